"""clrbench: a reproducible benchmark of learning-rate schedules on MNIST."""

from clrbench.store.results import Results, load_results

__all__ = ["Results", "load_results"]
__version__ = "0.1.0"
