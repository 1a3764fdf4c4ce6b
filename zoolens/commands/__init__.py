"""Subcommands of the ``zoolens`` command line."""
