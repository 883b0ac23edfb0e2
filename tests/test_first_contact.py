"""What a new user meets first (issue 37's smaller things): each fixed or given one clear line.

Fast unless marked: the CLI in this process on synthetic results folders. The slow ones start a
fresh interpreter (what `python -m clrbench` from the wrong folder does; TensorFlow's start-up
lines), which only a real process shows.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, load_synthetic

import clrbench
from clrbench.__main__ import namespace_hint
from clrbench.cli.main import main
from clrbench.errors import ConfigError, ResultsError
from clrbench.gate.baseline import config_hash
from clrbench.store.export import _as_recorded
from clrbench.store.mlflow_export import artifact_location, check_tracking_uri
from clrbench.study.resolve import resolve_study
from clrbench.suite.runner import pending_runs


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- python -m clrbench from the folder that holds the clone -------------------------------------


def test_a_clone_folder_taken_for_a_namespace_package_gets_one_line(tmp_path):
    (tmp_path / "clrbench").mkdir()  # the clone's folder: no __init__.py at its top
    spec = importlib.machinery.PathFinder.find_spec("clrbench", [str(tmp_path)])
    namespace = importlib.util.module_from_spec(spec)
    hint = namespace_hint(namespace)
    assert hint.startswith("clrbench: error: ") and str(tmp_path / "clrbench") in hint
    assert "run it from inside the clone, or use the installed `clrbench` command" in hint
    assert namespace_hint(clrbench) is None


# setuptools' editable install finds the package after Python's own path search
# (``__editable___*_finder``: a meta path finder appended to sys.meta_path), so a folder named
# clrbench in the working directory wins as a namespace package. This finder does the same.
EDITABLE = """
import importlib.abc, importlib.machinery, importlib.util, runpy, sys
ROOT = {root!r}
class Editable(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "clrbench":
            package = ROOT + "/clrbench"
            return importlib.util.spec_from_file_location(
                name, package + "/__init__.py", submodule_search_locations=[package])
        parent, _, child = name.rpartition(".")
        if parent.split(".")[0] == "clrbench":
            folder = ROOT + "/" + parent.replace(".", "/")
            return importlib.machinery.PathFinder.find_spec(name, [folder])
# right after Python's path search (ahead of an editable install of another checkout)
sys.meta_path.insert(sys.meta_path.index(importlib.machinery.PathFinder) + 1, Editable())
sys.argv = ["clrbench", "--version"]
runpy.run_module("clrbench", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_python_m_clrbench_from_the_folder_holding_the_clone(tmp_path):
    (tmp_path / "clrbench").mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = EDITABLE.format(root=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "found " + str(tmp_path / "clrbench") in done.stderr
    inside = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert inside.returncode == 0 and inside.stdout.startswith("clrbench ")


# --- TensorFlow's start-up lines -----------------------------------------------------------------


@pytest.mark.slow
def test_keras_schedules_and_check_exact_start_tensorflow_quietly(tmp_path):
    code = textwrap.dedent("""
        from clrbench.schedules import check_exact, make
        s = make("keras:CosineDecay", initial_learning_rate=0.1, decay_steps=100)
        check_exact(s, steps=120)
        check_exact(make("triangular", base_lr=0.01, max_lr=0.1, step_size=10), steps=50)
        print("ok")
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    assert done.stderr == ""  # no absl / CUDA / oneDNN / cpu_feature_guard lines


# --- the gate's wording --------------------------------------------------------------------------


@pytest.fixture
def baseline(synthetic_small, tmp_path, capsys) -> Path:
    path = tmp_path / "baseline.json"
    assert main(["baseline", str(synthetic_small), "-o", str(path), "--allow-few-seeds"]) == 0
    capsys.readouterr()
    return path


def test_allow_config_change_says_it_compared_anyway(synthetic_small, baseline, capsys):
    document = json.loads(baseline.read_text())
    entry = next(e for e in document["experiment"]["schedule"] if e["label"] == "constant")
    entry["lr"] = entry["lr"] * 2
    document["config_hash"] = config_hash(document["experiment"])
    baseline.write_text(json.dumps(document))
    check = ["check", str(synthetic_small), "--baseline", str(baseline), "--allow-few-seeds"]
    code, out, _ = cli(capsys, *check)
    assert code == 1 and "pass --allow-config-change to compare anyway" in out
    code, out, _ = cli(capsys, *check, "--allow-config-change")
    line = next(ln for ln in out.splitlines() if "configuration changed" in ln)
    assert line.startswith("note: ") and line.endswith("(compared anyway, as asked)")
    assert "--allow-config-change" not in out


def test_one_problem_is_one_problem(synthetic_small, baseline, capsys):
    document = json.loads(baseline.read_text())
    entry = next(e for e in document["experiment"]["schedule"] if e["label"] == "constant")
    entry["lr"] = entry["lr"] * 2  # one failure: the configuration
    document["config_hash"] = config_hash(document["experiment"])
    baseline.write_text(json.dumps(document))
    check = ["check", str(synthetic_small), "--baseline", str(baseline), "--allow-few-seeds"]
    code, out, _ = cli(capsys, *check)
    assert code == 1 and out.rstrip().endswith(f"check FAILED: 1 problem against {baseline}")
    code, out, _ = cli(capsys, *check, "--markdown")
    assert "### clrbench check: FAILED (1 problem)" in out and "problem(s)" not in out


# --- study --families ----------------------------------------------------------------------------


def test_study_families_lists_every_family_it_accepts():
    with pytest.raises(ConfigError) as refused:
        resolve_study(families="constant,clr")
    message = str(refused.value)
    assert message.startswith("unknown family 'clr'")
    for family in ("constant", "step-decay", "clr-iter", "clr-epoch", "one-cycle", "sgdr"):
        assert family in message
    assert [f.label for f in resolve_study(families="constant,one-cycle").families] == [
        "constant",
        "one-cycle",
    ]


# --- results folders -----------------------------------------------------------------------------


def test_a_corrupt_run_record_says_how_to_retrain(tmp_path):
    synthetic = load_synthetic()
    out = synthetic.write_synthetic_results(tmp_path / "r", ("constant",), seeds=2, epochs=1)
    plan = synthetic.make_experiment(("constant",), 2, 1, None, "mnist").plan()
    record = out / "runs" / plan.runs[0].run_id / "run.json"
    record.write_text("{not json")
    with pytest.raises(ResultsError) as refused:
        pending_runs(plan, out, force=False)
    message = str(refused.value)
    assert str(record) in message and message.count("\n") == 0
    assert f"delete {record.parent} to retrain that run, or pass --force" in message
    todo, kept = pending_runs(plan, out, force=True)
    assert len(todo) == 2 and not kept


@pytest.mark.parametrize("command", ["report", "export", "baseline"])
def test_a_file_given_as_a_results_folder_is_named_a_file(command, tmp_path, capsys):
    file = tmp_path / "report.html"
    file.write_text("<html></html>")
    extra = ["--csv", str(tmp_path / "x.csv")] if command == "export" else []
    code, out, err = cli(capsys, command, str(file), *extra)
    assert code == 2 and out == ""
    assert err == (
        f"clrbench: error: {file}: a file, not a results folder (give the folder that "
        "`run` or `study` wrote, the one holding runs/ or study.json)\n"
    )
    code, _, err = cli(capsys, command, str(tmp_path / "nothing"), *extra)
    assert code == 2 and err.endswith("nothing: no such results folder\n")


@pytest.mark.parametrize(
    ("option", "line"),
    [
        (["--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["--first-seed", "-1"], "--first-seed must be 0 or more, got -1"),
    ],
)
def test_seed_options_say_which_is_wrong(option, line, tmp_path, capsys):
    code, out, err = cli(capsys, "run", "--preset", "quick", "--out", str(tmp_path), *option)
    assert code == 2 and err == f"clrbench: error: {line}\n"


# --- export --------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["notaurl", "file:///tmp/mlruns", "gopher://host/store"])
def test_a_tracking_uri_mlflow_refuses_is_one_short_line(uri, synthetic_small, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    code, out, err = cli(capsys, "export", str(synthetic_small), "--mlflow", uri)
    assert code == 2 and out == "" and err.count("\n") == 1 and len(err) < 260
    assert err.startswith(f"clrbench: error: --mlflow {uri}: ") and "sqlite:///mlflow.db" in err


def test_tracking_uris_mlflow_accepts_pass(monkeypatch):
    for uri in (
        "sqlite:///mlflow.db",
        "postgresql+psycopg2://u@h/db",
        "http://h:5000",
        "databricks",
    ):
        check_tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_tracking_uri("file:///tmp/mlruns")


def test_mlflow_artifacts_go_beside_the_sqlite_store_not_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert artifact_location("sqlite:///stores/mlflow.db") == (tmp_path / "stores/mlruns").as_uri()
    assert artifact_location(f"sqlite:///{tmp_path}/a/m.db") == (tmp_path / "a/mlruns").as_uri()
    assert artifact_location("http://host:5000") is None
    assert artifact_location("sqlite://") is None  # in memory


def test_csv_floats_are_written_without_arithmetic_noise():
    frame = pd.DataFrame(
        {
            "test_accuracy": np.array([0.8674000000000001, 0.1 + 0.2]),
            "lr": np.array([0.02, 0.05], dtype=np.float32).astype(np.float64),
            "seed": [0, 1],
        }
    )
    text = _as_recorded(frame, ("lr",)).to_csv(index=False)
    assert text.splitlines() == ["test_accuracy,lr,seed", "0.8674,0.02,0", "0.3,0.05,1"]
    back = pd.read_csv(pd.io.common.StringIO(text))
    assert np.allclose(back["test_accuracy"], frame["test_accuracy"], rtol=1e-15, atol=0)


def test_csv_export_again_replaces_the_files(synthetic_small, tmp_path, capsys):
    target = tmp_path / "epochs.csv"
    for _ in range(2):
        code, _, err = cli(capsys, "export", str(synthetic_small), "--csv", str(target))
        assert code == 0, err
    assert "0.8674000000000001" not in target.read_text()


# --- list ----------------------------------------------------------------------------------------


def test_list_piped_prints_each_row_on_one_unpadded_line(capsys):
    code, out, _ = cli(capsys, "list")
    lines = out.splitlines()
    rows = [line for line in lines if line.startswith("  ")]
    assert code == 0 and any(row.startswith("  triangular | ") for row in rows)
    assert all("   " not in row.strip() for row in rows)  # no column padding
    assert all(line == line.rstrip() for line in lines)
    widest = max(len(line) for line in lines)
    assert widest == max(len(row) for row in rows)  # no line wider than its own cells


@pytest.mark.slow
def test_list_into_a_reader_that_leaves_early_says_nothing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    command = f"{sys.executable} -m clrbench list | head -1"
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.stdout.startswith("Schedules") and done.stderr == ""
