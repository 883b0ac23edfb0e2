"""Fidelity of the lean loop to Keras ``fit``: the same experiment trained both ways.

Full MNIST, 25 epochs, seeds 0-4, constant 0.05 and triangular 0.01-0.1 (step size 1,876),
once with ``trainer = "loop"`` (clrbench's default) and once with ``trainer = "fit"``. Both use
the same model, initial weights and optimizer; they differ in the batch order (a seeded numpy
permutation per epoch vs Keras' ``tf.random.shuffle``), so the same seed is a different draw of
batches, and only distributions can agree. Printed (and written as JSON with ``--json``):

- per schedule, final test accuracy of each trainer (mean ± sd), Welch's t-test and the
  Mann-Whitney U test between them (two-sided p-values; "equal within seed noise" = both
  p > 0.05);
- per seed, the first epoch's test accuracy under each trainer and the difference (the issue
  asks for |difference| <= 0.2 pp).

Run on a quiet machine (20 runs of 25 epochs, about 6 minutes with ``--jobs 2``)::

    python benchmarks/fidelity.py --out results/fidelity --jobs 2 [--json fidelity.json]

Runs land in OUT/loop and OUT/fit and are resumed like any clrbench results folder.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from scipy import stats

SCHEDULES = [
    {"label": "constant", "name": "constant", "lr": 0.05},
    {"label": "clr-iter", "name": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 1876},
]
TRAINERS = ("loop", "fit")


def train(out: Path, jobs: int, data_dir: str | None) -> None:
    from clrbench.config.experiment import Experiment
    from clrbench.suite.runner import run_suite

    for trainer in TRAINERS:
        experiment = Experiment.from_dict(
            {
                "experiment": {"name": f"fidelity-{trainer}", "seeds": 5, "trainer": trainer},
                "schedule": SCHEDULES,
            }
        )
        outcome = run_suite(experiment, out / trainer, jobs=jobs, data_dir=data_dir)
        print(f"{trainer}: trained {outcome.trained}, skipped {outcome.skipped}", flush=True)


def compare(out: Path) -> dict:
    from clrbench import load_results

    results = {t: load_results(out / t) for t in TRAINERS}
    report: dict = {}
    for entry in SCHEDULES:
        label = entry["label"]
        final, first = {}, {}
        for trainer, r in results.items():
            mine = r.epochs[r.epochs["schedule"] == label]
            last = mine[mine["epoch"] == mine["epoch"].max()].sort_values("seed")
            final[trainer] = last["test_accuracy"].to_numpy() * 100
            first[trainer] = mine[mine["epoch"] == 0].sort_values("seed")["test_accuracy"]
            first[trainer] = first[trainer].to_numpy() * 100
        welch = stats.ttest_ind(final["loop"], final["fit"], equal_var=False)
        mann_whitney = stats.mannwhitneyu(final["loop"], final["fit"], alternative="two-sided")
        report[label] = {
            "final_loop": final["loop"].tolist(),
            "final_fit": final["fit"].tolist(),
            "welch_p": float(welch.pvalue),
            "mann_whitney_p": float(mann_whitney.pvalue),
            "first_epoch_loop": first["loop"].tolist(),
            "first_epoch_fit": first["fit"].tolist(),
            "first_epoch_max_abs_diff_pp": float(np.max(np.abs(first["loop"] - first["fit"]))),
        }
    return report


def show(report: dict) -> None:
    print("\n| schedule | loop: final test acc. | fit: final test acc. | Welch p | MW p |")
    print("|---|---:|---:|---:|---:|")
    for label, r in report.items():
        loop, fit = np.array(r["final_loop"]), np.array(r["final_fit"])
        print(
            f"| {label} | {loop.mean():.2f} ± {loop.std(ddof=1):.2f} | "
            f"{fit.mean():.2f} ± {fit.std(ddof=1):.2f} | {r['welch_p']:.2f} | "
            f"{r['mann_whitney_p']:.2f} |"
        )
    print("\n| schedule | seed | first epoch, loop | first epoch, fit | difference (pp) |")
    print("|---|---:|---:|---:|---:|")
    for label, r in report.items():
        pairs = zip(r["first_epoch_loop"], r["first_epoch_fit"], strict=True)
        for seed, (loop, fit) in enumerate(pairs):
            print(f"| {label} | {seed} | {loop:.2f} | {fit:.2f} | {loop - fit:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/fidelity"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    train(args.out, args.jobs, os.environ.get("CLRBENCH_DATA_DIR"))
    report = compare(args.out)
    show(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
