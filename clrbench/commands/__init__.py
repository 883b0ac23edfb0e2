"""Subcommands of the clrbench CLI, one module each (see clrbench.cli)."""
