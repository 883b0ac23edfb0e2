"""Measure the per-seed spread of candidate ``ci`` presets: the design data of the CI gate.

Not a pytest file: a script that trains a few small suites and prints, per candidate and
schedule, the sample std of each gated metric over seeds and the seconds per run::

    python benchmarks/gate_noise.py train /tmp/gate-noise t6k-e4 t12k-e2 --seeds 8
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/gate_noise.py train /tmp/eigen t6k-e4 \
        --only constant sine-exp
    python benchmarks/gate_noise.py table /tmp/gate-noise [--paired /tmp/eigen]

``TF_ENABLE_ONEDNN_OPTS=0`` swaps TensorFlow's oneDNN kernels for Eigen's: the same seeds
with another summation order, i.e. another machine's float noise. ``--paired`` compares
each seed's result across the two folders (pairs, identical results, correlation, sd of the
difference); ``seeds_needed`` is the fewest seeds per side for which the gate's own rule sees
a 0.5 pp drop with 80% probability at that spread.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from clrbench.config.presets import _steps_per_epoch, standard_schedules

# name -> (train_size, epochs, cycle_epochs)
CANDIDATES = {
    "t6k-e4": (6000, 4, 2),
    "t12k-e2": (12000, 2, 2),
    "t12k-e4": (12000, 4, 2),
    "t30k-e2": (30000, 2, 2),
    "t3k-e4": (3000, 4, 2),
    "t6k-e2": (6000, 2, 2),
}
METRICS = ("final_test_accuracy", "best_test_accuracy", "final_train_loss")


def candidate(name: str, seeds: int, only: list[str] | None = None) -> dict:
    train_size, epochs, cycle = CANDIDATES[name]
    spe = _steps_per_epoch(train_size)
    settings = {"name": name, "epochs": epochs, "seeds": seeds, "train_size": train_size}
    schedules = standard_schedules(spe, epochs, cycle, cycle)
    schedules = [s for s in schedules if not only or s["label"] in only]
    return {"experiment": settings, "schedule": schedules}


def train(out: Path, names: list[str], seeds: int, jobs: int, only: list[str]) -> None:
    from clrbench.config.experiment import Experiment
    from clrbench.suite.runner import run_suite

    for name in names:
        experiment = Experiment.from_dict(candidate(name, seeds, only))
        outcome = run_suite(experiment, out / name, jobs=jobs)
        print(f"{name}: trained {outcome.trained}, failed {len(outcome.failed)}", flush=True)


def final(folder: Path) -> pd.DataFrame:
    from clrbench.analysis.stats import final_metrics
    from clrbench.store.results import load_results

    frame = final_metrics(load_results(folder))
    return frame[frame["status"] == "ok"]


def table(root: Path, paired: Path | None) -> None:
    rows = []
    for folder in sorted(p for p in root.iterdir() if (p / "experiment.toml").exists()):
        frame = final(folder)
        schedules = frame["schedule"].nunique()
        other = final(paired / folder.name) if paired and (paired / folder.name).exists() else None
        for label, group in frame.groupby("schedule", observed=True):
            row = {"preset": folder.name, "schedule": label, "n": len(group)}
            row["mean_pp"] = 100 * group["final_test_accuracy"].mean()
            for metric in METRICS:
                scale = 100 if "accuracy" in metric else 1
                row[f"sd_{metric}"] = scale * group[metric].std(ddof=1)
            row["run_s"] = group["wall_s"].median()
            row["seeds_needed"] = seeds_needed(row["sd_final_test_accuracy"] / 100, schedules)
            if other is not None:
                row |= _paired(group, other[other["schedule"] == label])
            rows.append(row)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).round(3).to_string(index=False))


def seeds_needed(sd: float, schedules: int, drop: float = 0.005) -> int:
    """Fewest seeds per side for which the gate's own rule detects ``drop`` with 80%
    probability, when each seed's value has std ``sd`` (both sides alike)."""
    from clrbench.gate.comparison import comparison_level, detectable_drop

    alpha = comparison_level("final_test_accuracy", schedules)
    for n in range(3, 200):
        if detectable_drop(sd * math.sqrt(2 / n), 2 * n - 2, alpha) <= drop:
            return n
    return 200


def _paired(group: pd.DataFrame, other: pd.DataFrame) -> dict:
    both = group.merge(other, on="seed", suffixes=("", "_b"))
    a, b = both["final_test_accuracy"], both["final_test_accuracy_b"]
    return {
        "pairs": len(both),
        "identical": int((a == b).sum()),
        "corr": float(np.corrcoef(a, b)[0, 1]) if len(both) > 2 else math.nan,
        "sd_diff_pp": 100 * float((a - b).std(ddof=1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("out", type=Path)
    p.add_argument("names", nargs="+", choices=sorted(CANDIDATES))
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", nargs="+", help="these schedule labels only")
    p = sub.add_parser("table")
    p.add_argument("root", type=Path)
    p.add_argument("--paired", type=Path)
    args = parser.parse_args()
    if args.command == "train":
        train(args.out, args.names, args.seeds, args.jobs, args.only)
    else:
        table(args.root, args.paired)


if __name__ == "__main__":
    main()
