"""The `ncc` command: one module per subcommand (commands/), the option groups
several commands share, and the one-line error reporting around them. The
top of the dependency order: it assembles the compiler and the study."""
