"""Graph analyses shared by passes, the manifest and `ncc inspect`."""
