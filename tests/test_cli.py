"""What a person sees on the command line: counts, plurals, hints, quiet mode, no noise."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import load_synthetic

from clrbench import __version__
from clrbench.cli.main import main
from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.suite.session import accuracy_cell, header
from clrbench.text import MINUS, did_you_mean, number, plural, signed

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
        "quick on mnist-mlp: 1 schedule x 1 seed = 1 run of 1 epoch (47 steps each), 1 at a time"
    )
    quick = Experiment.from_dict(PRESETS["quick"])
    assert header(quick.plan(), jobs=2) == (
        "quick on mnist-mlp: 5 schedules x 3 seeds = 15 runs of 4 epochs (188 steps each), "
        "2 at a time"
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
    for flag in (
        "--epochs N epochs per run",
        "--batch-size N",
        "--dataset {mnist,fashion_mnist,mnist1d}",
    ):
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
    expected = "quick on mnist-mlp: 1 schedule x 1 seed = 1 run of 1 epoch (8 steps each)"
    assert first == f"{expected}, 1 at a time -> {out}"
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


TENSORFLOW_START_UP = ("absl", "cudart", "oneDNN", "TF_ENABLE", "cpu_feature_guard")


def _clrbench(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m clrbench ARGS`` in a fresh process, as a user starts it (TensorFlow not yet
    imported, no TF_CPP_MIN_LOG_LEVEL of ours in the environment)."""
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    return subprocess.run(
        [sys.executable, "-m", "clrbench", *args],
        capture_output=True,
        text=True,
        env=base | {"PYTHONPATH": str(REPO)} | env,
        timeout=300,
        cwd=REPO,
    )


@pytest.mark.slow
def test_export_tensorboard_prints_no_tensorflow_start_up(small_results, tmp_path):
    """TensorBoard's event writer imports TensorFlow when it is installed; its start-up lines
    stay hidden as under `run`, and `--verbose` brings them back (so this test sees them)."""
    done = _clrbench("export", str(small_results), "--tensorboard", str(tmp_path / "tb"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"{tmp_path / 'tb'}: 4 runs")
    verbose = _clrbench(
        "export", str(small_results), "--tensorboard", str(tmp_path / "tb2"), "--verbose"
    )
    assert verbose.returncode == 0, verbose.stderr
    assert any(word in verbose.stderr for word in TENSORFLOW_START_UP), verbose.stderr


@pytest.mark.slow
def test_lr_find_in_worker_processes_prints_no_tensorflow_start_up(mnist_dir, tmp_path):
    """Two seeds with --jobs 2 sweep in two fresh loky workers (as `study`'s lr-find arm does):
    each worker's first TensorFlow import is hidden too, and `--verbose` brings it back."""
    args = ["lr-find", "--train-size", "2000", "--steps", "100", "--seeds", "2", "--jobs", "2"]
    args += ["--data-dir", str(mnist_dir)]
    done = _clrbench(*args, "--out", str(tmp_path / "lr"))
    assert done.returncode == 0, done.stderr
    assert not any(word in done.stderr for word in TENSORFLOW_START_UP), done.stderr
    verbose = _clrbench(*args, "--out", str(tmp_path / "lr2"), "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert any(word in verbose.stderr for word in TENSORFLOW_START_UP), verbose.stderr


@pytest.mark.slow
def test_download_fallback_prints_no_tensorflow_start_up(tmp_path):
    """No data on disk: the Keras download fallback imports TensorFlow; offline (a proxy that
    refuses every connection), the command says one line and exits 2, with no start-up lines."""
    out = tmp_path / "out"
    offline = {"HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras")}
    offline |= {key: "http://127.0.0.1:9" for key in ("https_proxy", "HTTPS_PROXY")}
    env = {"CLRBENCH_DATA_DIR": ""} | offline
    done = _clrbench("run", "--preset", "quick", "--out", str(out), **env)
    assert done.returncode == 2
    assert done.stderr.startswith("clrbench: error: mnist data not found; tried:")
    assert done.stderr.count("\n") == 1, done.stderr
    assert not any(word in done.stderr for word in TENSORFLOW_START_UP)
    assert not out.exists()


def test_baseline_defaults_to_the_results_folder(tmp_path, capsys, monkeypatch):
    """Run from a clone, the default must not land in the project's tracked reports/ folder."""
    results = load_synthetic().write_synthetic_results(
        tmp_path / "results", labels=("constant", "step"), seeds=3, epochs=2, train_size=1000
    )
    monkeypatch.chdir(tmp_path)
    assert main(["baseline", str(results)]) == 0
    written = results / "baseline-synthetic.json"
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"baseline: {written} (sha256:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no reports/ here
    assert json.loads(written.read_text())["format"]
    before = written.read_bytes()
    assert main(["baseline", str(results)]) == 2
    error = capsys.readouterr().err
    assert error == f"clrbench: error: {written}: baseline exists; pass --force to replace it\n"
    assert written.read_bytes() == before
    assert main(["check", str(results), "--baseline", str(written)]) == 0


def test_signed_numbers_use_one_minus_sign():
    assert [signed(v) for v in (0.814, -0.124, 0.0, -0.001)] == ["+0.81", "−0.12", "+0.00", "+0.00"]
    assert signed(-0.0152, ".4f") == "−0.0152" and signed(float("-inf")) == "−inf"
    assert [number(v, ".2f") for v in (-1.5, 2.0, -0.001)] == ["−1.50", "2.00", "0.00"]
    assert number(-1234.5, ",.0f") == "−1,234" and number(2.5e-7, ".2g") == "2.5e-07"
    assert [number(k, "d") for k in (-3, 0, 2)] == ["−3", "0", "2"] and signed(2, "d") == "+2"


# an ASCII hyphen-minus used as a sign: before a digit, not inside a word, date or exponent
ASCII_MINUS = re.compile(r"(?<![\w.])-\d")


def _synthetic(folder: Path, seeds: int) -> Path:
    labels = ("constant", "step", "clr-iter")
    return load_synthetic().write_synthetic_results(
        folder, labels=labels, seeds=seeds, epochs=2, train_size=1000
    )


def test_check_table_signs_every_change_with_the_same_minus(tmp_path, capsys):
    """Changes (signed, some negative here: 3 of the baseline's 5 seeds) and allowed worsenings
    sat side by side as "-0.14 pp" and "−2.63 pp"."""
    baseline = tmp_path / "baseline.json"
    main(["baseline", str(_synthetic(tmp_path / "a", 5)), "-o", str(baseline)])
    current = _synthetic(tmp_path / "b", 3)
    capsys.readouterr()
    for output in ([], ["--markdown"]):
        assert main(["check", str(current), "--baseline", str(baseline), *output]) == 0
        table = capsys.readouterr().out
        assert f"{MINUS}0.02 pp" in table  # step's final test accuracy, 3 seeds against 5
        assert f"{MINUS}0.0152" in table  # constant's final train loss
        assert not ASCII_MINUS.search(table), ASCII_MINUS.findall(table)


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
def test_report_signs_every_difference_with_the_same_minus(tmp_path):
    """Against the best schedule every difference is negative: the comparison table, its
    intervals and the prose all use "−"; the CSV keeps plain numbers."""
    results = _synthetic(tmp_path / "results", 3)
    out = tmp_path / "report"
    command = ["report", str(results), "--out", str(out), "--format", "md"]
    assert main([*command, "--baseline-schedule", "clr-iter"]) == 0
    text = (out / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| constant | 3 vs 3 |"))
    # difference, both ends of its 95% and of its 90% (equivalence) interval, Hedges' g
    assert row.count(MINUS) == 6, row
    assert not ASCII_MINUS.search(text), ASCII_MINUS.findall(text)
    assert MINUS not in (out / "summary.csv").read_text()


def test_list_piped_shows_whole_cells_without_markup(capsys):
    """Piped (not a terminal): each row on one line, every cell whole, ``code`` shown as code."""
    from clrbench.schedules import catalog

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    text = "\n".join(lines)
    assert "``" not in text and "…" not in text
    for name, params, doc, _ in catalog(keras=True):
        shown = ", ".join(p if default is None else f"{p}={default}" for p, default, _ in params)
        row = next(line for line in lines if line.startswith(f"  {name} | "))
        assert shown in row and doc.replace("``", "") in row, row


@pytest.mark.parametrize("command", ["run", "report", "check"])
def test_a_bad_margin_is_one_line_and_exit_2(tmp_path, capsys, command):
    folder = tmp_path / "results"
    folder.mkdir()
    args = {
        "run": ["run", "--preset", "quick", "--out", str(folder)],
        "report": ["report", str(folder)],
        "check": ["check", str(folder), "--baseline", str(tmp_path / "baseline.json")],
    }[command]
    assert main([*args, "--margin", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "clrbench: error: --margin 0: give percentage points above 0 and below 100\n"
    assert list(folder.iterdir()) == []  # nothing written
