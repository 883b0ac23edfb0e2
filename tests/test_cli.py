"""What a person sees on the command line: counts, plurals, hints, quiet mode, no noise."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from clrbench import __version__
from clrbench.cli.main import main
from clrbench.cli.run import accuracy_cell, header
from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.text import did_you_mean, plural

REPO = Path(__file__).resolve().parents[1]
# 1,000 images: 8 steps per epoch, the last batch of 104; a run takes a few seconds.
TINY = ["--preset", "quick", "--epochs", "1", "--train-size", "1000", "--no-report"]


def test_plural():
    assert [plural(n, "seed") for n in (0, 1, 2)] == ["0 seeds", "1 seed", "2 seeds"]
    assert plural(11_725, "step") == "11,725 steps"
    assert plural(1, "run was", "runs were") == "1 run was"


def test_header_counts_in_words():
    one = Experiment.from_dict(PRESETS["quick"]).select(["constant"])
    one = dataclasses.replace(one.with_workload(epochs=1), seeds=(0,))
    assert header(one.plan(), jobs=2) == (
        "quick: 1 schedule x 1 seed = 1 run of 1 epoch (47 steps each), 1 at a time"
    )
    quick = Experiment.from_dict(PRESETS["quick"])
    assert header(quick.plan(), jobs=2) == (
        "quick: 5 schedules x 3 seeds = 15 runs of 4 epochs (188 steps each), 2 at a time"
    )


def test_accuracy_cell_never_shows_nan():
    assert accuracy_cell(0.851, float("nan"), ok=1) == "85.10% (1 seed)"
    assert accuracy_cell(0.851, 0.0012, ok=3) == "85.10% ± 0.12"
    assert accuracy_cell(float("nan"), float("nan"), ok=0) == "n/a"


def test_did_you_mean():
    assert did_you_mean("clr_iter", ["clr-iter", "constant"]) == " (did you mean 'clr-iter'?)"
    assert did_you_mean("zzz", ["clr-iter", "constant"]) == ""


def test_unknown_schedule_is_one_plain_line_with_a_hint(capsys, tmp_path):
    assert main(["run", "--preset", "quick", "--schedules", "clr_iter", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("clrbench: error: unknown schedule 'clr_iter' (did you mean 'clr-iter'?)")
    assert "labels: constant, step-decay, clr-epoch, clr-iter, sine-exp" in err
    assert "schedule names: constant, exp_decay, exp_range" in err
    assert "[" not in err  # no Python list


def test_unknown_schedule_name_in_a_config_gets_a_hint(tmp_path, capsys):
    config = tmp_path / "exp.toml"
    config.write_text('[[schedule]]\nname = "triangle"\nbase_lr = 0.1\n')
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "unknown schedule 'triangle' (did you mean 'triangular'?)" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"clrbench {__version__}\n"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__


def help_text(capsys, *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal width


def test_help_explains_every_run_flag(capsys):
    text = help_text(capsys, "run")
    for flag in ("--epochs N epochs per run", "--batch-size N", "--dataset {mnist,fashion_mnist}"):
        assert flag in text
    assert "loky: worker processes on this machine (default); dask: a Dask cluster" in text
    assert "quick = 6,000 images, 4 epochs, 3 seeds" in text
    assert "named experiment (default)" not in text
    assert "--quiet print only errors and the results folder's path" in text
    lines = help_text(capsys, "run").split(" --")[1:]
    assert all(len(line.split(" ", 1)) == 2 for line in lines)  # every flag has a help text


def test_help_percent_signs_are_single(capsys):
    assert "sharing a 1% false-alarm budget" in help_text(capsys, "check")
    assert "80% of ok runs" in help_text(capsys, "report")
    assert "%%" not in help_text(capsys, "check") + help_text(capsys, "report")


@pytest.mark.slow
def test_run_messages_one_seed_resume_order_and_quiet(tmp_path, mnist_dir, capsys):
    out = tmp_path / "out"
    args = [*TINY, "--schedules", "constant", "--out", str(out), "--data-dir", str(mnist_dir)]
    assert main(["run", *args, "--seeds", "1", "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert (
        first
        == f"quick: 1 schedule x 1 seed = 1 run of 1 epoch (8 steps each), 1 at a time -> {out}"
    )
    assert "(1 seed)" in captured.out and "nan" not in captured.out
    assert captured.out.rstrip().endswith(f"results: {out}")

    assert main(["run", *args, "--seeds", "2", "--jobs", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    complete = err.index("1 run was already complete (use --force to retrain); 1 run to train")
    assert complete < err.index("training 1 run")  # said before training, not after

    assert main(["run", *args, "--seeds", "2", "--quiet"]) == 0
    assert capsys.readouterr() == (f"{out}\n", "")


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["loop", "fit"])
def test_quiet_run_prints_only_the_path_and_no_tensorflow_noise(tmp_path, mnist_dir, trainer):
    """A real process, as a user runs it: TensorFlow imported fresh, three runs in one process
    (enough for TensorFlow's retracing detector to speak about Keras fit's train function if it
    is not told otherwise; the lean loop gives it nothing to say)."""
    import tomli_w

    out = tmp_path / "out"
    config = tmp_path / "experiment.toml"
    quick = Experiment.from_dict(PRESETS["quick"]).to_dict()
    quick["experiment"]["trainer"] = trainer
    config.write_text(tomli_w.dumps(quick))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "clrbench", "run", "--config", str(config), *TINY[2:]]
    command += ["--seeds", "1", "--jobs", "1"]
    command += ["--schedules", "one-cycle,sgdr,constant", "--data-dir", str(mnist_dir)]

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *extra], capture_output=True, text=True, env=env, timeout=300, cwd=REPO
        )

    quiet = run("--out", str(out), "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == (f"{out}\n", "")

    verbose = run("--out", str(tmp_path / "verbose"), "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    retraced = "triggered tf.function retracing" in verbose.stderr
    assert retraced == (trainer == "fit")  # under fit, the filter is what hides it
