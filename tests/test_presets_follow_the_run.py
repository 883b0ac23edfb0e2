"""Lengths follow the run, in every preset (issue 33): written as shares of the run (or of the
epoch), so ``--epochs``/``--train-size`` shrink the shapes with the run; resolved at the full
size to the numbers the presets always had, so their run ids and the CI baseline's hash are
what they were. An absolute length a user writes stays absolute, and a shape it cuts short is
marked in the report's tables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_synthetic

from clrbench import load_results
from clrbench.cli.main import build_parser, main
from clrbench.cli.run import options_of
from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS, preset
from clrbench.config.resolve import EXPERIMENT_OPTIONS, resolve_experiments
from clrbench.config.workloads import BUILT_IN
from clrbench.data.load import dataset_counts
from clrbench.errors import ScheduleError
from clrbench.gate.baseline import config_hash
from clrbench.reporting import render as report
from clrbench.schedules import STEP_ROLES, make, roles, shape_notes, tie_to_run
from clrbench.suite.runner import write_experiment

REPO = Path(__file__).resolve().parents[1]

# Seed 0's run ids of every preset on every built-in workload, computed by the presets as they
# were before their lengths were tied to the run (commit 89ddee1, lengths as absolute numbers).
PRE_CHANGE_IDS = {
    ("mnist-mlp", "default"): [
        "constant-s0-57555467",
        "step-decay-s0-bd05fa40",
        "clr-epoch-s0-b98c33c7",
        "clr-iter-s0-90c6c079",
        "sine-exp-s0-2a88c460",
    ],
    ("mnist-mlp", "extended"): [
        "constant-s0-57555467",
        "step-decay-s0-bd05fa40",
        "clr-epoch-s0-b98c33c7",
        "clr-iter-s0-90c6c079",
        "sine-exp-s0-2a88c460",
        "triangular2-s0-ac510e13",
        "exp-range-s0-f5314188",
        "one-cycle-s0-1fcb2e67",
        "sgdr-s0-cb60ed4a",
        "exp-decay-s0-f4f71019",
        "warmup-cosine-s0-45503714",
        "warmup-clr-s0-263235d1",
    ],
    ("mnist-mlp", "quick"): [
        "constant-s0-edc95b4f",
        "step-decay-s0-5b6608cb",
        "clr-epoch-s0-181f42bb",
        "clr-iter-s0-92a1523f",
        "sine-exp-s0-3a5236ad",
    ],
    ("mnist-mlp", "ci"): [
        "constant-s0-edc95b4f",
        "step-decay-s0-5b6608cb",
        "clr-iter-s0-92a1523f",
        "sine-exp-s0-3a5236ad",
    ],
    ("fashion-mnist-mlp", "default"): [
        "constant-s0-c67dba2f",
        "step-decay-s0-f4b2afba",
        "clr-epoch-s0-9bd5d6b2",
        "clr-iter-s0-b365b2b3",
        "sine-exp-s0-57875ded",
    ],
    ("fashion-mnist-mlp", "extended"): [
        "constant-s0-c67dba2f",
        "step-decay-s0-f4b2afba",
        "clr-epoch-s0-9bd5d6b2",
        "clr-iter-s0-b365b2b3",
        "sine-exp-s0-57875ded",
        "triangular2-s0-5b6375c3",
        "exp-range-s0-6b23283a",
        "one-cycle-s0-9ba10ee8",
        "sgdr-s0-d40afa30",
        "exp-decay-s0-cedf8982",
        "warmup-cosine-s0-952c2512",
        "warmup-clr-s0-6c1897c3",
    ],
    ("fashion-mnist-mlp", "quick"): [
        "constant-s0-1cba42c5",
        "step-decay-s0-40b04be1",
        "clr-epoch-s0-4a16e061",
        "clr-iter-s0-fe0b8d2f",
        "sine-exp-s0-dd686d48",
    ],
    ("fashion-mnist-mlp", "ci"): [
        "constant-s0-1cba42c5",
        "step-decay-s0-40b04be1",
        "clr-iter-s0-fe0b8d2f",
        "sine-exp-s0-dd686d48",
    ],
    ("mnist1d-mlp", "default"): [
        "constant-s0-3cec6bba",
        "step-decay-s0-b9184ce7",
        "clr-epoch-s0-5101974a",
        "clr-iter-s0-c30b8401",
        "sine-exp-s0-df5d763a",
    ],
    ("mnist1d-mlp", "extended"): [
        "constant-s0-3cec6bba",
        "step-decay-s0-b9184ce7",
        "clr-epoch-s0-5101974a",
        "clr-iter-s0-c30b8401",
        "sine-exp-s0-df5d763a",
        "triangular2-s0-5c1c1e3f",
        "exp-range-s0-25273329",
        "one-cycle-s0-4ef3e23c",
        "sgdr-s0-1ea36a46",
        "exp-decay-s0-40702c76",
        "warmup-cosine-s0-74085286",
        "warmup-clr-s0-5490a102",
    ],
    ("mnist1d-mlp", "quick"): [
        "constant-s0-c9bfabfa",
        "step-decay-s0-11832c77",
        "clr-epoch-s0-acf7e6f7",
        "clr-iter-s0-31450ff6",
        "sine-exp-s0-a635cd37",
    ],
    ("mnist1d-mlp", "ci"): [
        "constant-s0-c9bfabfa",
        "step-decay-s0-11832c77",
        "clr-iter-s0-31450ff6",
        "sine-exp-s0-a635cd37",
    ],
}


def _experiment(workload: str, name: str) -> Experiment:
    named = BUILT_IN[workload]
    return Experiment.from_dict(preset(name, named, dataset_counts(named.dataset)[0]))


@pytest.mark.parametrize(("workload", "name"), list(PRE_CHANGE_IDS))
def test_full_size_run_ids_are_unchanged(workload, name):
    runs = _experiment(workload, name).runs()
    assert [spec.run_id for spec in runs if spec.seed == 0] == PRE_CHANGE_IDS[workload, name]


@pytest.mark.parametrize(
    ("folder", "workload"),
    [("default", "mnist-mlp"), ("default-fashion-mnist-mlp", "fashion-mnist-mlp"),
     ("default-mnist1d-mlp", "mnist1d-mlp")],
)  # fmt: skip
def test_full_size_run_ids_are_those_of_the_committed_reference_runs(folder, workload):
    """The committed reports list the ids of the 25 runs that trained them: the runs `run`
    plans, stacked where it stacks by default (MNIST-1D: a stacked run has an id of its own)."""
    from clrbench.suite.session import stacking_plan

    text = (REPO / "reports" / folder / "report.md").read_text()
    trained = set(re.findall(r"\| ([a-z0-9-]+-s\d-[0-9a-f]{8}) \|", text))
    assert len(trained) == 25
    assert set(stacking_plan(_experiment(workload, "default"), None, None).run_ids) == trained


def test_the_ci_preset_keeps_the_committed_baseline_hash():
    """The gate hashes the configuration with tied lengths resolved: the ci preset, now written
    as shares of the run, is the configuration reports/baseline-ci.json was made from."""
    baseline = json.loads((REPO / "reports" / "baseline-ci.json").read_text())
    stored = Experiment.from_dict(PRESETS["ci"]).to_dict()  # what a run writes to disk
    assert stored["schedule"][2]["step_size"] == "run * 0.25"  # kept tied on disk
    assert config_hash(stored) == baseline["config_hash"]


def _absolute_lengths(entry: dict, name: str) -> list[str]:
    """Step-count parameters written as numbers, nested schedules included."""
    declared = roles(name)
    found = []
    for key, value in entry.items():
        if declared.get(key) in STEP_ROLES and not isinstance(value, str):
            found.append(f"{name}.{key}")
        if declared.get(key) == "schedule" and isinstance(value, dict):
            found += _absolute_lengths(value, value["name"])
    return found


@pytest.mark.parametrize("workload", list(BUILT_IN))
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_length_is_tied_to_the_run(workload, name):
    named = BUILT_IN[workload]
    raw = preset(name, named, dataset_counts(named.dataset)[0])
    absolute = [a for e in raw["schedule"] for a in _absolute_lengths(e, e["name"])]
    assert absolute == []
    for entry in raw["schedule"]:
        assert isinstance(entry.get("optimizer_warmup_steps", "run"), str)  # schedule-free's
        for key in ("decay", "gamma"):  # per-step amplitude factors: to 10% over the run
            assert entry.get(key, "0.1 ** (1 / run)") == "0.1 ** (1 / run)"


def _shrunk(name: str) -> Experiment:
    """The issue's command line, resolved as ``run`` resolves it."""
    argv = ["run", "--workload", "fashion-mnist-mlp", "--epochs", "2", "--train-size", "3000",
            "--preset", name]  # fmt: skip
    options = options_of(build_parser().parse_args(argv))
    (experiment,) = resolve_experiments(
        None, **{k: v for k, v in options.items() if k in EXPERIMENT_OPTIONS}
    )
    return experiment


@pytest.mark.parametrize("name", ["default", "extended", "modern"])
def test_the_issues_shrunk_run_trains_every_shape_whole(name):
    """``run --workload fashion-mnist-mlp --epochs 2 --train-size 3000``: 48 steps, where the
    cycles kept a half cycle of 2,344 steps and step decay its drop at step 2,345."""
    experiment = _shrunk(name)
    assert (experiment.total_steps, experiment.steps_per_epoch) == (48, 24)
    for spec in experiment.runs():
        notes = shape_notes(spec.schedule, 48, spec.label)
        assert [n.text for n in notes if n.incomplete] == []
    params = {s.label: s.schedule.params for s in experiment.runs() if s.seed == 0}
    if name != "modern":
        assert params["sine-exp"]["period"] == 10 and params["sine-exp"]["decay"] == 0.953162
        assert round(0.953162**48, 3) == 0.1  # the amplitude still falls to 10%
    assert params["step-decay"]["every_steps"] == 10  # a fifth of the run: it drops
    assert params["clr-iter"]["step_size"] == 5


def test_a_modern_shrunk_run_has_every_phase():
    params = {s.label: s.schedule.params for s in _shrunk("modern").runs() if s.seed == 0}
    assert params["wsd"] | {} == {
        "peak_lr": 0.1, "warmup_steps": 2, "decay_steps": 10, "total_steps": 48,
        "end_lr": 0.0, "cooldown": "1-sqrt",
    }  # fmt: skip
    assert params["cosine"]["total_steps"] == params["one-cycle"]["total_steps"] == 48
    workloads = {s.label: s.workload for s in _shrunk("modern").runs() if s.seed == 0}
    assert workloads["sf-adamw"].optimizer == "schedulefree-adamw"
    assert workloads["sf-adamw"].optimizer_warmup_steps == 2  # 5% of the 48 steps
    assert workloads["adamw-wsd"].optimizer == "adamw" and params["adamw-wsd"]["decay_steps"] == 10


def test_the_modern_preset_on_each_workload():
    """Ten schedule families beside the classic three; SGD's at the workload's max_lr, AdamW's
    and schedule-free's at the rates checked on validation (config.modern_presets)."""
    for workload in BUILT_IN:
        experiment = _experiment(workload, "modern")
        specs = {s.label: s for s in experiment.runs() if s.seed == 0}
        assert list(specs) == [
            "constant", "step-decay", "clr-iter", "cosine", "linear-decay", "wsd",
            "cyclic-cosine", "one-cycle", "adamw-cosine", "adamw-linear-decay", "adamw-wsd",
            "sf-adamw", "sf-sgd",
        ]  # fmt: skip
        optimizers = {label: spec.workload.optimizer for label, spec in specs.items()}
        assert set(optimizers.values()) == {
            "sgd-momentum", "adamw", "schedulefree-adamw", "schedulefree-sgd",
        }  # fmt: skip
        max_lr = BUILT_IN[workload].max_lr
        assert specs["wsd"].schedule.params["peak_lr"] == max_lr
        assert specs["sf-sgd"].schedule.name == specs["sf-adamw"].schedule.name == "constant"
        assert experiment.notes == (
            tuple(n for n in experiment.notes if n.startswith("clr-iter"))
        )  # only the classic cycle may end mid-cycle


def test_an_absolute_length_stays_absolute_and_is_marked_in_the_report(tmp_path):
    """A step decay written with ``every_steps = 2345`` in a 20-step run never drops: kept as
    written, and the report's tables say so (a dagger and the reason), not only stderr."""
    synthetic = load_synthetic()
    raw = {
        "experiment": {"name": "short", "epochs": 2, "seeds": 2, "train_size": 1280},
        "schedule": [
            {"label": "constant", "name": "constant", "lr": 0.01},
            {
                "label": "step",
                "name": "step_decay",
                "granularity": "epoch",
                "initial_lr": 0.1,
                "drop": 0.5,
                "every_steps": 2345,
            },
        ],  # fmt: skip
    }
    experiment = Experiment.from_dict(raw)
    assert experiment.runs()[-1].schedule.params["every_steps"] == 2345
    assert experiment.notes == (
        "step: every_steps = 2,345 but the run has 20 steps; training ends before the first drop",
    )
    write_experiment(experiment.plan(), tmp_path)
    for spec in experiment.runs():
        synthetic._write_one(tmp_path, spec, experiment.steps_per_epoch, "ok")
    markdown = report.render(load_results(tmp_path), tmp_path / "report")["md"].read_text()
    assert sum(line.startswith("| step † |") for line in markdown.splitlines()) == 4  # + settings
    assert "training ends before the first drop." in markdown


# --- the epoch form and per-step factors ---


def test_epoch_tied_lengths_follow_the_steps_per_epoch():
    params = {"initial_lr": 0.1, "drop": 0.5, "every_steps": "epoch * 5"}
    assert tie_to_run("step_decay", params, 11725, 469)["every_steps"] == 2345
    assert tie_to_run("step_decay", params, 48, 24)["every_steps"] == 120
    cycle = {"base_lr": 0.01, "max_lr": 0.1, "step_size": "epoch * 2.5"}
    assert tie_to_run("triangular", cycle, 11725, 469)["step_size"] == 1172  # round(1172.5)
    assert tie_to_run("triangular", cycle | {"step_size": "epoch"}, 96, 24)["step_size"] == 24


def test_an_epoch_tied_length_in_an_experiment():
    raw = {
        "experiment": {"epochs": 3, "train_size": 1280},
        "schedule": [{"label": "w", "name": "wsd", "peak_lr": 0.1, "warmup_steps": "epoch",
                      "decay_steps": "epoch * 1.5", "total_steps": "run"}],
    }  # fmt: skip
    spec = Experiment.from_dict(raw).runs()[0]
    assert spec.schedule.params["warmup_steps"] == 10
    assert spec.schedule.params["decay_steps"] == 15 and spec.schedule.params["total_steps"] == 30


def test_a_per_step_factor_tied_to_the_run():
    params = {"base_lr": 0.01, "max_lr": 0.1, "period": 10, "decay": "0.1 ** (1 / run)"}
    assert tie_to_run("sine_exp", params, 11725)["decay"] == round(0.1 ** (1 / 11725), 6)
    with pytest.raises(ScheduleError, match=r"F in 'F \*\* \(1 / run\)' must be in \(0, 1\]"):
        tie_to_run("sine_exp", params | {"decay": "2 ** (1 / run)"}, 100)
    with pytest.raises(ScheduleError, match="must be a number or 'F"):
        tie_to_run("sine_exp", params | {"decay": "0.1 ** run"}, 100)


@pytest.mark.parametrize(
    ("value", "named"),
    [("epoch * 0", "fraction of the epoch must be > 0"), ("epochs", "'epoch * F'")],
)
def test_a_bad_epoch_tied_length_is_one_schedule_error(value, named):
    with pytest.raises(ScheduleError, match=re.escape(named)):
        tie_to_run("step_decay", {"initial_lr": 0.1, "drop": 0.5, "every_steps": value}, 48, 24)
    with pytest.raises(ScheduleError, match="tied to the run or the epoch"):
        make("step_decay", initial_lr=0.1, drop=0.5, every_steps="epoch * 2")


# --- bad input through the command line: one line, exit 2, nothing written ---

WSD = {"label": "w", "name": "wsd", "peak_lr": 0.1, "warmup_steps": 4, "decay_steps": 8,
       "total_steps": "run"}  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (WSD | {"cooldown": "sqrt"},
         "schedule 'w': wsd: cooldown must be one of linear, cosine, 1-sqrt, got 'sqrt'"),
        (WSD | {"warmup_steps": 40, "total_steps": 100},
         "schedule 'w': warmup_steps = 40 steps of warm-up but the run has 30; training ends "
         "before the warm-up does; shorten it, or write it relative to the run ('run * 0.05') "
         "or the epoch ('epoch * 2')"),
        (WSD | {"warmup_steps": 0, "decay_steps": 31, "total_steps": 40},
         "schedule 'w': decay_steps = 31 steps of cooldown but the run has 30; the cooldown "
         "cannot fit in the run; shorten it, or write it relative to the run ('run * 0.05') or "
         "the epoch ('epoch * 2')"),
        (WSD | {"end_lr": 0.2},
         "schedule 'w': wsd: end_lr must be <= peak_lr=0.1, got 0.2"),
        ({"label": "c", "name": "warmup_cosine", "peak_lr": 0.1, "warmup_steps": 30,
          "total_steps": "run"},
         "schedule 'c': warmup_cosine: warmup_steps must be < total_steps=30, got 30"),
    ],
)  # fmt: skip
def test_bad_schedule_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, entry, message):
    config = tmp_path / "exp.toml"
    rows = "\n".join(f"{k} = {json.dumps(v)}" for k, v in entry.items())
    config.write_text(f"[experiment]\nepochs = 3\ntrain_size = 1280\n\n[[schedule]]\n{rows}\n")
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"clrbench: error: {message}\n"
    assert not out.exists()


# --- trained end to end (slow) ---

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _run_cli(*arguments: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "clrbench", "run", *arguments, "--jobs", "2"]
    # 78 small runs: ~5 min on 2 idle cores; 900 s ran out at a load of 17 on them
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=2400, cwd=REPO)


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_the_issues_shrunk_fashion_run_drops_and_cycles(tmp_path):
    """The issue's command (two seeds, three of its schedules): the step decay drops in the
    48-step run, the cycles turn, sine-exp's amplitude falls; nothing marked incomplete."""
    out = tmp_path / "out"
    done = _run_cli("--workload", "fashion-mnist-mlp", "--epochs", "2", "--train-size", "3000",
                    "--seeds", "2", "--schedules", "step-decay,clr-iter,sine-exp",
                    "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    batches = load_results(out).batches
    lr = {label: group[group.seed == 0]["lr"].to_numpy() for label, group in
          batches.groupby("schedule", observed=True)}  # fmt: skip
    assert len(lr["step-decay"]) == 48
    np.testing.assert_allclose(lr["step-decay"][[0, 23, 24, 47]], [0.1, 0.1, 0.025, 0.025])
    peaks = np.flatnonzero(np.isclose(lr["clr-iter"], lr["clr-iter"].max()))
    assert len(peaks) >= 4  # cycles of 10 steps (they were 2,344 at the full size)
    assert lr["sine-exp"][40] < 0.2 * lr["sine-exp"].max()
    assert "†" not in (out / "report" / "report.md").read_text()


@pytest.mark.slow
def test_the_modern_preset_trains_end_to_end_on_two_workloads(tmp_path, mnist_dir):
    """``run --preset modern --seeds 3`` on mnist1d-mlp and mnist-mlp (2 epochs of 1,000
    examples): every run ok, and each report shows every family and its rate."""
    out = tmp_path / "out"
    done = _run_cli("--preset", "modern", "--seeds", "3", "--workload", "mnist1d-mlp,mnist-mlp",
                    "--epochs", "2", "--train-size", "1000", "--data-dir", str(mnist_dir),
                    "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    labels = ["constant", "step-decay", "clr-iter", "cosine", "linear-decay", "wsd",
              "cyclic-cosine", "one-cycle", "adamw-cosine", "adamw-linear-decay", "adamw-wsd",
              "sf-adamw", "sf-sgd"]  # fmt: skip
    for workload, peak in (("mnist1d-mlp", 0.2), ("mnist-mlp", 0.2)):
        results = load_results(out / workload)
        runs = results.runs
        assert sorted(runs["schedule"].unique()) == sorted(labels)
        assert (runs["status"] == "ok").all() and len(runs) == 39
        report_md = (out / workload / "report" / "report.md").read_text()
        for label in labels:
            assert f"| {label} |" in report_md
        assert report_md.count(f"peak_lr = {peak}") == 4  # cosine, linear-decay, wsd, cycles
        first = results.batches.groupby("schedule", observed=True)["lr"].max()
        assert first["wsd"] == pytest.approx(peak) and first["cosine"] == pytest.approx(peak)
        # the settings table: each family's optimizer, decay and own warm-up (5% of the run)
        steps = int(results.batches.groupby("run_id", observed=True).size().iloc[0])
        warmup = f"{max(1, round(steps * 0.05)):,}"  # "run * 0.05" in whole steps, at least 1
        assert "| adamw-cosine | adamw | 0.01 | – | warmup_cosine(" in report_md
        assert f"| sf-adamw | schedulefree-adamw | 0 | {warmup} | constant(" in report_md
        assert "| constant | sgd-momentum | – | – | constant(lr=" in report_md


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_every_preset_label_resolves_for_a_run_of_a_few_epochs(epochs):
    """`run --epochs 1 --schedules ...` looks labels up among every preset's entries; a run of
    one epoch (all of it warm-up for warmup-clr) once raised ZeroDivisionError there."""
    from clrbench.config.experiment import preset_entries

    entries = preset_entries(5, epochs)
    labels = [e.label for e in entries]
    assert {"warmup-clr", "warmup-cosine", "constant", "clr-iter"} <= set(labels)
    clr = next(e for e in entries if e.label == "warmup-clr")
    assert clr.to_dict()["schedule"]["step_size"]  # a length, written as a share of the run
