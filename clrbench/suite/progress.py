"""Live progress of a suite (rich): a bar of runs, a bar of epochs, the epoch of each running run.

Workers write ``{"epoch": n, "running": bool}`` to ``OUT/runs/.progress/<run_id>`` (see
``clrbench.suite.runner``); the display reads those small files on each refresh, so it works for
loky and local Dask workers alike. "running" counts only files whose run says it is still
training, so it never exceeds the number of workers.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from clrbench.store.records import RunRecord
from clrbench.text import plural


class SuiteProgress:
    """A rich Live display of the suite; in a non-terminal one line per run; quiet: nothing."""

    def __init__(self, console: Console, epochs: int, quiet: bool = False):
        self.console = console
        self.epochs = epochs
        self.quiet = quiet
        self.live_display = console.is_terminal and not quiet
        self.counts = {"ok": 0, "diverged": 0, "failed": 0}
        self.todo: list = []
        self.finished_epochs: dict[str, int] = {}  # run id -> epochs it trained
        self.progress_dir: Path | None = None
        self.run_task = self.epoch_task = TaskID(0)  # set by start()
        label = TextColumn("{task.description:<6}")
        self.run_bar = Progress(
            label, BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
            console=console,
        )  # fmt: skip
        self.epoch_bar = Progress(
            label, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=console,
        )  # fmt: skip
        self.live: Live | None = None

    def already_complete(self, kept: int, todo: int) -> None:
        """Before training: runs of this experiment found complete in the folder."""
        if self.quiet:
            return
        were = "was" if kept == 1 else "were"
        left = f"; {plural(todo, 'run')} to train" if todo else "; nothing to train"
        self.console.print(
            f"{plural(kept, 'run')} {were} already complete (use --force to retrain){left}",
            markup=False,
        )

    def start(self, todo: list, progress_dir: Path) -> None:
        self.todo, self.progress_dir = list(todo), progress_dir
        self.run_task = self.run_bar.add_task("runs", total=len(todo), status="")
        self.epoch_task = self.epoch_bar.add_task("epochs", total=len(todo) * self.epochs)
        if self.live_display:
            self.live = Live(self, console=self.console, refresh_per_second=2, transient=True)
            self.live.start()
        elif not self.quiet:
            self.console.print(f"training {plural(len(todo), 'run')}", markup=False)

    def finished(self, record: RunRecord) -> None:
        self.counts[record.status] += 1
        run_id = record.run_id
        ok = record.status == "ok"
        self.finished_epochs[run_id] = self.epochs if ok else self._read(run_id)[0]
        if not self.live_display and not self.quiet:
            done = sum(self.counts.values())
            note = record.error or ""
            self.console.print(
                f"[{done}/{len(self.todo)}] {run_id}: {record.status} "
                f"({record.wall_s or 0:.1f} s) {note}".rstrip(),
                markup=False,
            )

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _read(self, run_id: str) -> tuple[int, bool]:
        """(epochs finished, still running) from the run's progress file; (0, False) if none."""
        if self.progress_dir is None:
            return 0, False
        try:
            state = json.loads((self.progress_dir / run_id).read_text())
            return int(state["epoch"]), bool(state["running"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, False

    def snapshot(self) -> tuple[dict[str, int], int, int]:
        """(epoch of each running run, epochs trained so far, epochs the suite will train)."""
        running, trained, total = {}, 0, 0
        for spec in self.todo:
            if spec.run_id in self.finished_epochs:
                trained += self.finished_epochs[spec.run_id]
                total += self.finished_epochs[spec.run_id]  # a diverged run stops early
                continue
            epoch, is_running = self._read(spec.run_id)
            trained, total = trained + epoch, total + self.epochs
            if is_running:
                running[spec.run_id] = epoch
        return running, trained, total

    def __rich__(self) -> Group:
        running, trained, total = self.snapshot()
        counts = "  ".join(f"{k} {v}" for k, v in self.counts.items())
        status = f"{counts}  running {len(running)}"
        self.run_bar.update(self.run_task, completed=len(self.finished_epochs), status=status)
        self.epoch_bar.update(self.epoch_task, completed=trained, total=total)
        table = Table.grid(padding=(0, 2))
        for run_id, epoch in sorted(running.items()):
            # the epoch it is in: one more than it has finished
            table.add_row(f"  {run_id}", f"epoch {min(epoch + 1, self.epochs)}/{self.epochs}")
        return Group(self.run_bar, self.epoch_bar, table)
