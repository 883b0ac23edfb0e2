"""The live progress display: a bar of runs, a bar of epochs, honest counts, quiet when asked."""

from __future__ import annotations

import io
import json

from rich.console import Console

from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.store.records import RunRecord
from clrbench.suite.progress import SuiteProgress


def specs(count: int = 3):
    return Experiment.from_dict(PRESETS["quick"]).runs()[:count]


def record(run_id: str, status: str, wall_s: float) -> RunRecord:
    return RunRecord(run_id, "constant", 0, {}, {}, status, wall_s=wall_s)


def write_state(folder, spec, epoch: int, running: bool) -> None:
    (folder / spec.run_id).write_text(json.dumps({"epoch": epoch, "running": running}))


def test_runs_and_epochs_are_separate_bars_with_honest_counts(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = SuiteProgress(console, epochs=4)
    todo = specs(4)
    progress.start(todo, tmp_path)
    write_state(tmp_path, todo[0], 3, running=True)  # in its 4th epoch
    write_state(tmp_path, todo[1], 1, running=True)
    # finished in its worker, record not yet received: not running, its epochs count
    write_state(tmp_path, todo[2], 4, running=False)
    write_state(tmp_path, todo[3], 2, running=False)  # diverged after 2 epochs
    progress.finished(record(todo[3].run_id, "diverged", 1))
    console.print(progress)
    progress.stop()
    text = out.getvalue()
    assert f"{todo[0].run_id}" in text and "epoch 4/4" in text and "epoch 2/4" in text
    assert todo[2].run_id not in text  # not running any more
    assert "diverged 1" in text and "running 2" in text
    runs, epochs = progress.run_bar.tasks[0], progress.epoch_bar.tasks[0]
    assert (runs.description, runs.completed, runs.total) == ("runs", 1, 4)
    # 3 + 1 + 4 trained by the unfinished runs, 2 by the diverged one, which needs no more
    assert (epochs.description, epochs.completed, epochs.total) == ("epochs", 10, 3 * 4 + 2)


def test_running_never_counts_a_worker_twice(tmp_path):
    # A worker that finished run A and started run B: only B is running.
    progress = SuiteProgress(Console(file=io.StringIO()), epochs=4)
    todo = specs(2)
    progress.start(todo, tmp_path)
    write_state(tmp_path, todo[0], 4, running=False)
    write_state(tmp_path, todo[1], 0, running=True)
    running, trained, total = progress.snapshot()
    assert running == {todo[1].run_id: 0} and (trained, total) == (4, 8)


def test_plain_lines_when_not_a_terminal(tmp_path):
    out = io.StringIO()
    progress = SuiteProgress(Console(file=out, force_terminal=False), epochs=4)
    progress.already_complete(1, 3)
    progress.start(specs(), tmp_path)
    progress.finished(record("constant-s0-x", "ok", 2.5))
    progress.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "1 run was already complete (use --force to retrain); 3 runs to train"
    assert lines[1:] == ["training 3 runs", "[1/3] constant-s0-x: ok (2.5 s)"]


def test_one_run_is_singular_and_quiet_prints_nothing(tmp_path):
    out = io.StringIO()
    progress = SuiteProgress(Console(file=out, force_terminal=False), epochs=4)
    progress.already_complete(2, 0)
    progress.start(specs(1), tmp_path)
    assert out.getvalue().splitlines() == [
        "2 runs were already complete (use --force to retrain); nothing to train",
        "training 1 run",
    ]
    quiet_out = io.StringIO()
    quiet = SuiteProgress(Console(file=quiet_out, force_terminal=True), epochs=4, quiet=True)
    quiet.already_complete(2, 3)
    quiet.start(specs(), tmp_path)
    quiet.finished(record("constant-s0-x", "ok", 2.5))
    quiet.stop()
    assert quiet_out.getvalue() == ""
