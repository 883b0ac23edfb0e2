"""A tiny grid study end to end through ``python -m clrbench study`` (issue 36): families of
both optimizers and a schedule-free one trained for real on mnist1d-mlp, and the report's grid
table rendered from the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from clrbench.store.results import load_results

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
FAMILIES = "constant,clr-iter,adamw-constant,adamw-cosine,sf-adamw"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "clrbench", "study", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)


def test_a_tiny_grid_study_trains_and_renders_the_grid(tmp_path, mnist_dir):
    """The grid preset shrunk (2 epochs of 1,500 examples, budget 2, 1 study, 2 final seeds, the
    sensitivity sweep over 3 multipliers with 1 seed): 25 runs, about 3 minutes on 2 cores."""
    env = os.environ | {"PYTHONPATH": str(REPO), "CLRBENCH_DATA_DIR": str(mnist_dir)}
    config = tmp_path / "grid.toml"
    shrink = ["--epochs", "2", "--train-size", "1500", "--budget", "2", "--seeds", "2"]
    shrink += ["--confirm-top", "0", "--no-zero-budget", "--families", FAMILIES]
    emitted = _cli("--preset", "grid", "--workload", "mnist1d-mlp", *shrink,
                   "--emit-config", str(config), env=env)  # fmt: skip
    assert emitted.returncode == 0, emitted.stderr
    raw = tomllib.loads(config.read_text())
    raw["study"] |= {"octaves": [-1, 0, 1], "sensitivity_seeds": 1}
    config.write_text(tomli_w.dumps(raw))
    out = tmp_path / "grid"
    done = _cli("--config", str(config), "--out", str(out), "--quiet", "--jobs", "2", env=env)
    assert done.returncode == 0, done.stderr
    # each family trained its own optimizer, with its tuned weight decay and warm-up
    runs = load_results(out / "trials").runs
    records = {
        str(r.schedule): json.loads((out / "trials/runs" / str(r.run_id) / "run.json").read_text())
        for r in runs.itertuples()
    }
    optimizers = {name.rsplit("-t", 1)[0]: r["config"]["optimizer"] for name, r in records.items()}
    assert optimizers == {"constant": "sgd-momentum", "clr-iter": "sgd-momentum",
                          "adamw-constant": "adamw", "adamw-cosine": "adamw",
                          "sf-adamw": "schedulefree-adamw"}  # fmt: skip
    free = records["sf-adamw-t0"]["config"]
    assert free["optimizer_warmup_steps"] >= 1 and free["weight_decay"] > 0
    markdown = (out / "report/report.md").read_text()
    assert "## The grid: difference to each optimizer's tuned constant" in markdown
    assert "| Schedule | sgd-momentum | adamw |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| schedule-free |")]
    assert len(rows) == 1 and rows[0].count(" pp, ") == 1  # sf-adamw under adamw
    assert "| constant | tuned constant (baseline)" in markdown
    assert "The grid's best family, chosen on validation, is " in markdown
    assert "The cycles under sgd-momentum: does the best cycle (clr-iter)" in markdown
    assert (out / "report/figures/grid.png").is_file()
