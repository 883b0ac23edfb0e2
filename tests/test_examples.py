"""The example CI workflow users copy: valid GitHub Actions, and every clrbench command in it
is one the CLI accepts today."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from clrbench.cli.main import build_parser

WORKFLOW = REPO / "examples/clrbench-gate.yml"


def checker() -> str:
    path = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(path).exists():
        pytest.skip("check-jsonschema not installed (pip install -e '.[dev]')")
    return path


@pytest.mark.slow
def test_workflow_matches_githubs_workflow_schema():
    done = subprocess.run(
        [checker(), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_schema_check_catches_a_broken_workflow(tmp_path):
    text = WORKFLOW.read_text()
    assert "    runs-on: ubuntu-latest\n" in text
    path = tmp_path / "broken.yml"
    path.write_text(text.replace("    runs-on: ubuntu-latest\n", "    runs_on: ubuntu-latest\n"))
    done = subprocess.run(
        [checker(), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1


def clrbench_commands() -> list[list[str]]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]
    lines = [line for step in steps for line in step.get("run", "").splitlines()]
    return [shlex.split(line)[3:] for line in lines if line.startswith("python -m clrbench ")]


def test_workflow_runs_the_ci_preset_then_the_markdown_check():
    commands = clrbench_commands()
    assert [c[0] for c in commands] == ["run", "check"]
    parser = build_parser()
    run, check = (parser.parse_args(c) for c in commands)
    assert run.preset == "ci" and check.markdown
    assert check.baseline == "reports/baseline-ci.json" and check.results_dir == run.out
    workflow = yaml.safe_load(WORKFLOW.read_text())
    setup = next(
        s for s in workflow["jobs"]["gate"]["steps"] if "setup-python" in s.get("uses", "")
    )
    assert setup["with"]["cache"] == "pip"


def test_workflow_publishes_the_checks_junit_file():
    (_, check) = (build_parser().parse_args(c) for c in clrbench_commands())
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]
    publish = next(s for s in steps if "action-junit-report" in s.get("uses", ""))
    assert publish["uses"].rsplit("@", 1)[1].startswith("v")  # pinned to a release
    assert publish["with"]["report_paths"] == check.junit
    assert publish["if"] == "success() || failure()"  # also, above all, after a regression
