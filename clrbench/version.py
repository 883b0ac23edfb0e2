"""The package's version (its own module, so that any layer may print it)."""

__version__ = "0.1.0"
