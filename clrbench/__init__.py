"""clrbench: a reproducible benchmark of learning-rate schedules on MNIST.

The public API (what the command line calls; docs/concepts/architecture.md)::

    results = clrbench.run(out="results/mine", seeds=3, epochs=2)   # train
    results = clrbench.load_results("results/mine")                 # read, no training
    clrbench.compare(results, baseline="constant")                  # the comparison table
    clrbench.run(out="results/two", workload="mnist-mlp,mnist1d-mlp")  # -> clrbench.Workloads
    clrbench.report(results, out="results/mine/report")             # HTML + Markdown
    clrbench.study.run(preset="quick", out="results/study")         # the equal-budget study
    clrbench.study.load("results/study")                            # its recorded analysis
    clrbench.gate.check(results, "reports/baseline-ci.json")        # the regression gate
    clrbench.plot.accuracy(results, per="epoch", hue="schedule")    # seaborn Axes
    clrbench.lr_find(out="results/lr-find", seeds=3)                # the range test's bounds
    clrbench.catalog().schedules                                    # what `clrbench list` shows
"""

from __future__ import annotations

import importlib
from typing import Any

from clrbench.version import __version__ as __version__

__all__ = ["Results", "catalog", "compare", "export", "gate", "load_results", "lr_find", "plot"]
__all__ += ["report", "run", "study", "Workloads"]


_FUNCTIONS = ("catalog", "compare", "export", "load_results", "lr_find", "report", "run")
_MODULES = ("gate", "plot", "study")


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that importing any part of clrbench (``clrbench.schedules`` in a
    # plug-in, a worker) pays neither for the results store (pandas, pyarrow) nor for training.
    if name in _FUNCTIONS:
        from clrbench import api

        return getattr(api, name)
    if name == "Results":
        from clrbench.store.results import Results

        return Results
    if name == "Workloads":
        from clrbench.across.workloads import Workloads

        return Workloads
    if name in _MODULES:
        return importlib.import_module(f"clrbench.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
