"""The live progress display: epochs of running runs, counts, plain lines off a terminal."""

from __future__ import annotations

import io
import json

from rich.console import Console

from clrbench.experiment import Experiment
from clrbench.presets import PRESETS
from clrbench.progress import SuiteProgress


def specs():
    return Experiment.from_dict(PRESETS["quick"]).runs()[:3]


def test_live_display_shows_running_runs_and_counts(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = SuiteProgress(console, epochs=4)
    todo = specs()
    progress.start(todo, tmp_path)
    (tmp_path / todo[0].run_id).write_text(json.dumps({"epoch": 3}))
    (tmp_path / todo[1].run_id).write_text(json.dumps({"epoch": 1}))
    progress.finished({"run_id": todo[2].run_id, "status": "failed", "error": "x", "wall_s": 1})
    console.print(progress)
    progress.stop()
    text = out.getvalue()
    assert f"{todo[0].run_id}" in text and "epoch 3/4" in text and "epoch 1/4" in text
    assert "failed 1" in text and "running 2" in text
    task = progress.bar.tasks[0]
    assert (task.completed, task.total) == (4 + 3 + 1, 3 * 4)


def test_plain_lines_when_not_a_terminal_and_silence_when_quiet(tmp_path):
    record = {"run_id": "constant-s0-x", "status": "ok", "wall_s": 2.5}
    out = io.StringIO()
    progress = SuiteProgress(Console(file=out, force_terminal=False), epochs=4)
    progress.start(specs(), tmp_path)
    progress.finished(record)
    progress.stop()
    assert "training 3 runs" in out.getvalue()
    assert "[1/3] constant-s0-x: ok (2.5 s)" in out.getvalue()
    quiet_out = io.StringIO()
    quiet = SuiteProgress(Console(file=quiet_out, force_terminal=True), epochs=4, quiet=True)
    quiet.start(specs(), tmp_path)
    quiet.finished(record)
    quiet.stop()
    assert quiet_out.getvalue() == ""
