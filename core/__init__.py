"""What every part of ncc shares: errors and exit codes, atomic files and
hashes, running tools, safe unpickling, datasets, reference execution and the
bundle folder. A leaf: it imports nothing else from ncc."""
