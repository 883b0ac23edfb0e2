"""The public API end to end, in a fresh interpreter that imports nothing but ``clrbench``:
run -> load_results -> compare -> report -> a tiny study -> study.load -> gate.check -> lr_find
-> catalog, on real training of the small MNIST-1D workload (slow tier)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC = ("run", "load_results", "compare", "report", "study", "gate", "plot", "lr_find", "catalog")

SCRIPT = """
import json, sys
from pathlib import Path

import clrbench

out = Path(sys.argv[1])
results = clrbench.run(
    out=out / "run", workload="mnist1d-mlp", epochs=2, seeds=3,
    schedules=["constant", "clr-iter"], jobs=2, quiet=True, no_report=True,
)
loaded = clrbench.load_results(out / "run")
table = clrbench.compare(loaded, baseline="constant")
written = clrbench.report(loaded, out=out / "report")
failed = clrbench.study.run(
    out=out / "study", preset="quick", workload="mnist1d-mlp", epochs=2, budget=2, seeds=2,
    confirm_top=0, families="constant,clr-iter", no_zero_budget=True, jobs=2, quiet=True,
)
study = clrbench.study.load(out / "study")
baseline = clrbench.gate.save_baseline(loaded, out / "baseline.json")
verdict = clrbench.gate.check(out / "run", baseline)
found = clrbench.lr_find(
    out=out / "lr-find", workload="mnist1d-mlp", seeds=2, steps=100, jobs=2, quiet=True,
    emit_config=out / "clr.toml",
)
known = clrbench.catalog()
print("FACTS", json.dumps({
    "same": results.runs["run_id"].tolist() == loaded.runs["run_id"].tolist(),
    "status": sorted(set(loaded.runs["status"])),
    "compared": table[["schedule", "baseline", "n", "n_baseline"]].to_dict("records"),
    "written": sorted(written),
    "failed": failed,
    "winners": sorted(study.winners),
    "passed": verdict.passed,
    "exit_code": verdict.exit_code,
    "bounds": [found.suggestion["base_lr"], found.suggestion["max_lr"]],
    "swept": sorted(found.data["seed"].unique().tolist()),
    "lr_files": sorted(found.files),
    "schedules": known.schedules["name"].tolist(),
    "workloads": known.workloads["workload"].tolist(),
    "modules": sorted(m for m in sys.modules if m.startswith("clrbench")),
}))
"""


def test_run_report_study_and_check_through_the_public_api_only(tmp_path):
    # the public API only: no internal module imported, every name used in clrbench.__all__
    assert not re.search(r"from clrbench|import clrbench\.", SCRIPT)
    assert set(re.findall(r"\bclrbench\.(\w+)", SCRIPT)) <= set(PUBLIC)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    facts = json.loads(done.stdout.rsplit("FACTS", 1)[1])
    assert facts["same"] and facts["status"] == ["ok"]
    assert facts["compared"] == [
        {"schedule": "clr-iter", "baseline": "constant", "n": 3, "n_baseline": 3}
    ]
    assert facts["written"] == ["csv", "html", "md"]
    assert (tmp_path / "report" / "report.md").read_text().startswith("# clrbench report")
    assert facts["failed"] == 0 and facts["winners"] == ["clr-iter", "constant"]
    assert (tmp_path / "study" / "report" / "report.html").is_file()
    assert facts["passed"] and facts["exit_code"] == 0  # the same runs: nothing regressed
    base_lr, max_lr = facts["bounds"]
    assert 1e-4 < base_lr < max_lr < 10 and facts["swept"] == [0, 1]  # inside the sweep
    assert facts["lr_files"] == ["config", "json", "parquet", "png"]
    assert "max_lr" in (tmp_path / "clr.toml").read_text()  # the emitted experiment
    assert {"constant", "triangular", "wsd"} <= set(facts["schedules"])
    assert facts["workloads"][:3] == ["mnist-mlp", "fashion-mnist-mlp", "mnist1d-mlp"]


pytestmark = pytest.mark.slow
