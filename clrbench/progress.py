"""Live progress of a suite (rich): runs done / running / failed, epoch of each, ETA.

Workers write their epoch count to ``OUT/runs/.progress/<run_id>``; the display reads those
small files on each refresh, so it works for loky and local Dask workers alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class SuiteProgress:
    """A rich Live display of the suite; in a non-terminal it prints one line per run."""

    def __init__(self, console: Console, epochs: int, quiet: bool = False):
        self.console = console
        self.epochs = epochs
        self.quiet = quiet
        self.live_display = console.is_terminal and not quiet
        self.counts = {"ok": 0, "diverged": 0, "failed": 0}
        self.todo: list = []
        self.finished_ids: set[str] = set()
        self.progress_dir: Path | None = None
        self.bar = Progress(
            TextColumn("[bold]runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = None
        self.live: Live | None = None

    def start(self, todo: list, progress_dir: Path) -> None:
        self.todo, self.progress_dir = list(todo), progress_dir
        # progress counts epochs, so the ETA moves while long runs are still in flight
        self.task = self.bar.add_task("runs", total=len(todo) * self.epochs, status="")
        if self.live_display:
            self.live = Live(self, console=self.console, refresh_per_second=2, transient=True)
            self.live.start()
        elif not self.quiet:
            self.console.print(f"training {len(todo)} runs")

    def finished(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        self.finished_ids.add(record["run_id"])
        if not self.live_display and not self.quiet:
            done = sum(self.counts.values())
            note = record.get("error") or ""
            self.console.print(
                f"[{done}/{len(self.todo)}] {record['run_id']}: {record['status']} "
                f"({record.get('wall_s', 0):.1f} s) {note}".rstrip()
            )

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _epochs_done(self) -> dict[str, int]:
        done = {}
        if self.progress_dir is None:
            return done
        for spec in self.todo:
            if spec.run_id in self.finished_ids:
                continue
            try:
                done[spec.run_id] = json.loads((self.progress_dir / spec.run_id).read_text())[
                    "epoch"
                ]
            except (OSError, ValueError, KeyError):
                continue
        return done

    def __rich__(self) -> Group:
        running = self._epochs_done()
        completed = len(self.finished_ids) * self.epochs + sum(running.values())
        status = "  ".join(f"{k} {v}" for k, v in self.counts.items()) + f"  running {len(running)}"
        self.bar.update(self.task, completed=completed, status=status)
        table = Table.grid(padding=(0, 2))
        for run_id, epoch in sorted(running.items()):
            table.add_row(f"  {run_id}", f"epoch {epoch}/{self.epochs}")
        return Group(self.bar, table)
