"""The workload a results folder trained, and the accuracy its time to target is measured at
(shared by the run report and the cross-workload comparison)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clrbench.analysis import stats
from clrbench.config.workload import WORKLOAD_KEYS, Workload
from clrbench.config.workloads import at_defaults, name_of, named_of
from clrbench.errors import ClrbenchError

if TYPE_CHECKING:
    from clrbench.store.results import Results


def results_workload(results: Results) -> Workload | None:
    """The workload a results folder trained (its experiment.toml), None when it does not say
    or its settings no longer validate (a plug-in not installed here)."""
    settings = results.experiment.get("experiment", {})
    if "dataset" not in settings:
        return None
    try:
        return Workload(**{k: v for k, v in settings.items() if k in WORKLOAD_KEYS})
    except ClrbenchError:
        return None


def workload_name(results: Results) -> str:
    """What a results folder's workload is called (``mnist-mlp``...), else the folder's name."""
    workload = results_workload(results)
    return name_of(workload) if workload is not None else results.path.name


def workload_target(results: Results) -> tuple[float, str]:
    """The accuracy time-to-target is measured at, and where it comes from: the named
    workload's own target when the run is at that workload's defaults, else the data-driven
    :func:`clrbench.analysis.stats.default_target`."""
    workload = results_workload(results)
    found = named_of(workload) if workload is not None else None
    if workload is None or found is None or found.target is None or not at_defaults(workload):
        return stats.default_target(results), "data-driven (80% of ok runs reach it)"
    return float(found.target), f"{found.name}'s own target"
