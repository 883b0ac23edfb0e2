"""clrbench: a reproducible benchmark of learning-rate schedules on MNIST."""

from __future__ import annotations

from typing import Any

__all__ = ["Results", "load_results"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The results store (pandas, pyarrow) loads on first use, so that importing any part of
    # clrbench (``clrbench.schedules`` in a plug-in, a worker) does not pay for it.
    if name in __all__:
        from clrbench.store import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
