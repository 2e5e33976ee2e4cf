"""ncc: compile convolutional networks for real-time embedded boards."""

__version__ = "0.1.0"
