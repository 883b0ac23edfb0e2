"""Resident memory of one suite worker over consecutive runs, with and without recycling.

One ``clrbench.suite.pool.WorkerPool`` worker trains RUNS small runs back to back (the real
``clrbench.suite.runner.execute``: data, model, fit, frames); after each run the worker reports its
current resident set (``VmRSS``) and its peak so far (``VmHWM``) from ``/proc/self/status``.
Then the same with the runner's recycling (``RUNS_PER_WORKER``): a fresh worker every N runs.
Each for both trainers (the lean loop, Keras fit) unless ``--trainer`` names one.

    python benchmarks/worker_memory.py [--runs 20] [--train-size 1000] [--epochs 1]
        [--trainer loop|fit] [--json F]

Figures and how to read them: benchmarks/README.md. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def measured_run(spec: Any, data_dir: str | None) -> dict[str, Any]:
    """In the worker: one real run, then this process's memory and pid."""
    from clrbench.suite.runner import execute

    done = execute(spec, data_dir, None)
    return {
        "status": done["record"]["status"],
        "pid": os.getpid(),
        "rss_mb": _status_mb("VmRSS"),
        "peak_rss_mb": _status_mb("VmHWM"),
    }


def experiment(runs: int, train_size: int, epochs: int, trainer: str = "loop") -> Any:
    from clrbench.config.experiment import Experiment

    return Experiment.from_dict(
        {
            "experiment": {
                "name": "worker-memory",
                "epochs": epochs,
                "seeds": runs,
                "train_size": train_size,
                "trainer": trainer,
            },
            "schedule": [{"label": "clr", "name": "triangular", "base_lr": 0.01, "max_lr": 0.1,
                          "step_size": 8}],
        }
    )  # fmt: skip


def measure(
    runs: int, train_size: int, epochs: int, max_tasks: int | None, trainer: str = "loop"
) -> list[dict]:
    """Each run's memory figures, in order, from one worker slot."""
    from clrbench.suite.pool import WorkerPool

    # the worker imports this module by name (not as __main__): make its folder importable
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, str(HERE))
    import worker_memory

    data_dir = os.environ.get("CLRBENCH_DATA_DIR")
    specs = experiment(runs, train_size, epochs, trainer).runs()
    rows = []
    with WorkerPool(1, max_tasks=max_tasks) as pool:
        for _spec, row in pool.map_unordered(worker_memory.measured_run, specs, (data_dir,)):
            if not isinstance(row, dict):
                raise RuntimeError(f"worker failed: {row}")
            rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    """First/last/max RSS and the growth from run 2 to the last (run 1 pays imports)."""
    rss = [r["rss_mb"] for r in rows]
    return {
        "runs": len(rows),
        "workers": len({r["pid"] for r in rows}),
        "rss_first_mb": rss[0],
        "rss_last_mb": rss[-1],
        "rss_max_mb": max(rss),
        "peak_rss_max_mb": max(r["peak_rss_mb"] for r in rows),
        "growth_after_run_2_mb": rss[-1] - rss[1] if len(rss) > 1 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    from clrbench.suite.runner import RUNS_PER_WORKER

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--trainer", choices=("loop", "fit"), action="append")
    parser.add_argument("--json", metavar="FILE", help="also write every figure here")
    args = parser.parse_args(argv)
    report = {}
    for trainer, (name, max_tasks) in (
        (trainer, mode)
        for trainer in args.trainer or ("loop", "fit")
        for mode in (("one worker", None), (f"recycled every {RUNS_PER_WORKER}", RUNS_PER_WORKER))
    ):
        name = f"{trainer}, {name}"
        rows = measure(args.runs, args.train_size, args.epochs, max_tasks, trainer)
        report[name] = {"summary": summary(rows), "rows": rows}
        print(f"{name}: " + ", ".join(f"{k} {v:.0f}" for k, v in report[name]["summary"].items()))
        print("  RSS MB after each run: " + " ".join(f"{r['rss_mb']:.0f}" for r in rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
