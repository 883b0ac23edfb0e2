"""The stated margin: the smallest difference of final test accuracy that matters.

Each named workload states one (``NamedWorkload.margin_pp``; why each value:
docs/concepts/protocol.md, "The margin"); ``--margin PP`` replaces it. A results folder's margin
is its workload's (its data set and model), else none: then no comparison can be "equivalent".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clrbench.analysis.workload import results_workload
from clrbench.config.workload import Workload
from clrbench.config.workloads import named_of
from clrbench.errors import ConfigError

if TYPE_CHECKING:
    from clrbench.store.results import Results


@dataclass(frozen=True)
class Margin:
    """A margin as a fraction of accuracy (``value``; None: none stated) and where it comes
    from (``source``, for the reports)."""

    value: float | None
    source: str

    @property
    def pp(self) -> float | None:
        return None if self.value is None else round(self.value * 100, 10)

    @property
    def text(self) -> str:
        """The margin as text: ±0.1 pp, or no margin."""
        return "no margin" if self.pp is None else f"±{self.pp:g} pp"

    def to_json(self) -> dict[str, object]:
        return {"margin_pp": self.pp, "margin_source": self.source}


def checked_margin_pp(value: float | None) -> float | None:
    """``--margin``'s value in pp, or a ConfigError line: it must be above 0 and below 100."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0 < value < 100:
        raise ConfigError(f"--margin {value:g}: give percentage points above 0 and below 100")
    return value


def workload_margin(workload: Workload | None, margin_pp: float | None = None) -> Margin:
    """``--margin`` when given, else the named workload's own, else none."""
    checked = checked_margin_pp(margin_pp)
    if checked is not None:
        return Margin(checked / 100, "set by --margin")
    found = named_of(workload) if workload is not None else None
    if found is None or found.margin_pp is None:
        return Margin(None, "none stated (give --margin)")
    return Margin(found.margin_pp / 100, f"{found.name}'s preset")


def results_margin(results: Results, margin_pp: float | None = None) -> Margin:
    """:func:`workload_margin` of a results folder's workload (its experiment.toml)."""
    if margin_pp is not None:
        return workload_margin(None, margin_pp)
    return workload_margin(results_workload(results), None)  # None: a plug-in not installed
