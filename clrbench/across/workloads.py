"""Several workloads' results as one value: what ``clrbench.run(workload="a,b")`` returns.

A read-only mapping of workload name to that workload's :class:`~clrbench.store.results.Results`
(in the order they were trained), the folder that holds them, and their cross-workload
comparison (:func:`clrbench.across.analysis.differences`) and statistics
(:func:`clrbench.across.analysis.analyse`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from clrbench.across import analysis as across
from clrbench.across.report import holds_workloads, load_workloads
from clrbench.store.results import Results


class Workloads(Mapping[str, Results]):
    """Each workload's results by name, and the folder holding them (``path``)."""

    def __init__(self, path: Path, named: Mapping[str, Results]) -> None:
        self.path = Path(path)
        self._named = dict(named)

    def __getitem__(self, name: str) -> Results:
        return self._named[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._named)

    def __len__(self) -> int:
        return len(self._named)

    def __repr__(self) -> str:
        return f"Workloads({str(self.path)!r}, {list(self._named)})"

    @property
    def folders(self) -> list[Path]:
        """Each workload's results folder, in order."""
        return [results.path for results in self._named.values()]

    def compare(self, baseline: str | None = None, margin: float | None = None) -> pd.DataFrame:
        """The cross-workload report's comparison table: each workload's schedules against
        ``baseline`` (default ``constant``), decided at each workload's margin (or ``margin``,
        pp, for all), with ``p_holm_all`` over every comparison of every workload."""
        return across.differences(self._named, baseline, margin)

    def analysis(
        self, baseline: str | None = None, margin: float | None = None
    ) -> across.AcrossAnalysis:
        """Every statistic of the cross-workload report (rank agreement, performance profile,
        per-workload summaries)."""
        return across.analyse(self._named, baseline, margin)


def load(folder: Path) -> Workloads | None:
    """The workloads held in ``folder`` (``run --workload a,b``'s folder, or a rendered
    cross-workload report's compact data); None for a folder of any other kind."""
    held = holds_workloads(folder)
    return Workloads(folder, load_workloads(held)) if held else None
