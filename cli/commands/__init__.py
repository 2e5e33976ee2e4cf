"""One module per ncc subcommand; each exposes `command`."""
