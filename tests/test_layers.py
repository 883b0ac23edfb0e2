"""The layering's runtime promise: commands that only read stay free of TensorFlow.

(The import direction itself is checked by import-linter, `lint-imports`, configured in
pyproject.toml; `report` and `check` are covered in test_report_render.py and test_regress.py.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "mlflow")  # mlflow: only `export --mlflow` imports it


def _loaded_after(argv: list[str]) -> tuple[int, list[str], str]:
    """Run the CLI in a fresh interpreter; its exit code, which of HEAVY it imported, output."""
    code = (
        "import sys\nfrom clrbench.cli.main import main\n"
        f"code = main({argv!r})\n"
        f"print('LOADED', *[m for m in {HEAVY!r} if m in sys.modules])\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    loaded = done.stdout.rsplit("LOADED", 1)[-1].split()
    return done.returncode, loaded, done.stdout + done.stderr


@pytest.mark.slow
def test_list_starts_without_tensorflow():
    returncode, loaded, output = _loaded_after(["list"])
    assert returncode == 0, output
    assert "constant" in output and "triangular" in output  # it listed the schedules
    assert loaded == [], f"list imported {loaded}"


@pytest.mark.slow
def test_study_emit_config_starts_without_tensorflow(tmp_path):
    returncode, loaded, output = _loaded_after(
        ["study", "--preset", "quick", "--emit-config", str(tmp_path / "study.toml")]
    )
    assert returncode == 0, output
    assert (tmp_path / "study.toml").is_file()
    assert loaded == [], f"study --emit-config imported {loaded}"


@pytest.mark.slow
def test_building_the_parser_imports_no_command_work():
    """Every command module is imported to build the parser: none may pull in TensorFlow."""
    code = (
        "import sys\nfrom clrbench.cli.main import build_parser\nbuild_parser()\n"
        f"print(*[m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.split() == []


@pytest.mark.slow  # starts an interpreter
def test_import_schedules_loads_no_dataframe_or_deep_learning_library():
    """A plug-in author's ``import clrbench.schedules`` (and a worker's) stays light."""
    heavy = ("pandas", "pyarrow", "tensorflow", "keras", "torch", "scipy", "matplotlib")
    code = (
        "import sys\nimport clrbench.schedules as s\n"
        "s.make('warmup', steps=5, schedule={'name': 'constant', 'lr': 0.1})(3)\n"
        f"print(*[m for m in {heavy!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.split() == []
