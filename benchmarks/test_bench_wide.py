"""Runs per hour, separate vs wide stacks, side by side on 2 cores (issue 34).

Each measurement is a whole process with ``--jobs 2`` (start-up, worker start, data, tracing,
training, evaluation, writing every run; no report), separate (``--no-stack``) and stacked
(``--stack``, the measured width), one right after the other, the order alternating from shape
to shape so that drift on the shared machine hits both alike:

- (a) ``mnist1d-mlp``'s default suite: 5 schedules x 5 seeds = 25 runs of 100 epochs;
- (b) a ``mnist1d-mlp`` study's tuning phase: the reference study's 80 trials, one seed, each
  evaluated on validation (``study_phase.py``);
- (c) ``mnist-mlp``'s default suite, 25 runs, shortened to ``MNIST_EPOCHS`` epochs (a full one
  is 7 min separate).

Reported per shape: wall seconds, runs per hour and the ratio stacked / separate, the load
average before and after; for the stacked runs the GFLOP/s their training achieved (the dense
layers' forward and backward products over the members' ``train_s`` shares, one core each)
against the GEMM rate of the stacked shapes on this machine (``stack_width.py gemm``). The
ratio is the result; nothing is asserted (the numbers decide ``--stack``'s auto choice:
``clrbench.suite.devices.CPU_STACKING``).

    python -m pytest benchmarks/test_bench_wide.py --benchmark-only -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from stack_width import DIMS, flops_per_step
from test_bench_training import REPO

# Shortened where the shared machine's load makes a full shape too long for one session (say so
# with the numbers): CLRBENCH_BENCH_SHAPES="b,c" picks shapes, CLRBENCH_BENCH_STUDY_EPOCHS
# shortens (b)'s trials, CLRBENCH_BENCH_MNIST_EPOCHS (c)'s runs.
MNIST_EPOCHS = int(os.environ.get("CLRBENCH_BENCH_MNIST_EPOCHS", "2"))
STUDY_EPOCHS = os.environ.get("CLRBENCH_BENCH_STUDY_EPOCHS")
SHAPES = os.environ.get("CLRBENCH_BENCH_SHAPES", "a,b,c").split(",")
HERE = Path(__file__).parent


def shapes(tmp: Path) -> dict[str, tuple[list[str], int, str]]:
    """name -> (command after ``python``, runs, model)."""
    run = ["-m", "clrbench", "run", "--jobs", "2", "--no-report", "--quiet", "--force"]
    study = [str(HERE / "study_phase.py"), "mnist1d-mlp"]
    study += ["--epochs", STUDY_EPOCHS] if STUDY_EPOCHS else []
    epochs = f", {STUDY_EPOCHS} epochs" if STUDY_EPOCHS else ""
    every = {
        "(a) mnist1d-mlp default suite": (
            [*run, "--workload", "mnist1d-mlp", "--seeds", "5"],
            25,
            "mlp-100-100",
        ),
        f"(b) mnist1d-mlp tuning phase, 80 trials{epochs}": (study, 80, "mlp-100-100"),
        f"(c) mnist-mlp default suite, {MNIST_EPOCHS} epochs": (
            [*run, "--seeds", "5", "--epochs", str(MNIST_EPOCHS)],
            25,
            "dense-512",
        ),
    }
    return {name: shape for name, shape in every.items() if name[1] in SHAPES}


def measure(command: list[str], out: Path, env: dict[str, str]) -> dict[str, float]:
    load = os.getloadavg()[0]
    args = [sys.executable, *command]
    args += [str(out)] if "study_phase.py" in command[0] else ["--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return {"wall_s": wall, "load_before": load, "load_after": os.getloadavg()[0]}


def achieved_gflops(out: Path, model: str, batch: int) -> tuple[float, int]:
    """The stacked members' dense products per second of their ``train_s`` shares, and the
    stacks' width."""
    records = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    steps = sum(
        len(pd.read_parquet(p, columns=["step"])) for p in out.glob("runs/*/batches.parquet")
    )
    dims = DIMS[model]
    flops = flops_per_step(list(zip(dims[:-1], dims[1:], strict=True)), batch) * steps
    width = max(r["provenance"].get("stack_size") or 1 for r in records)
    return flops / sum(r["train_s"] for r in records) / 1e9, width


def gemm_rate(model: str, width: int, env: dict[str, str]) -> float:
    command = [sys.executable, str(HERE / "stack_width.py"), "gemm", model, str(width)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def test_runs_per_hour_separate_vs_wide_stacks(benchmark, data_env, tmp_path, capsys):
    benchmark.group = "runs per hour: separate vs wide stacks (2 CPU cores)"
    results: dict[str, dict] = {}

    def side_by_side() -> None:
        for index, (name, (command, runs, model)) in enumerate(shapes(tmp_path).items()):
            modes = ["--no-stack", "--stack"][:: 1 if index % 2 == 0 else -1]
            row: dict = {"runs": runs}
            for mode in modes:
                out = tmp_path / f"{index}{mode}"
                sample = measure([*command, mode], out, data_env)
                sample["runs_per_hour"] = runs * 3600 / sample["wall_s"]
                row[mode.lstrip("-")] = sample
                if mode == "--stack":
                    row["gflops"], row["width"] = achieved_gflops(out, model, 128)
                    row["gemm_gflops"] = gemm_rate(model, row["width"], data_env)
            row["ratio"] = row["stack"]["runs_per_hour"] / row["no-stack"]["runs_per_hour"]
            results[name] = row
            with capsys.disabled():
                print(f"\n{name}: {json.dumps(row)}", flush=True)

    t0 = time.perf_counter()
    benchmark.pedantic(side_by_side, rounds=1, iterations=1)
    benchmark.extra_info |= {"results": results}
    with capsys.disabled():
        print(f"\nseparate vs stacked, --jobs 2, {time.perf_counter() - t0:.0f} s in all:")
        for name, r in results.items():
            sep, stk = r["no-stack"], r["stack"]
            print(
                f"  {name}: separate {sep['wall_s']:.1f} s ({sep['runs_per_hour']:.0f} runs/h, "
                f"load {sep['load_before']:.1f}->{sep['load_after']:.1f}); stacked "
                f"{stk['wall_s']:.1f} s ({stk['runs_per_hour']:.0f} runs/h, load "
                f"{stk['load_before']:.1f}->{stk['load_after']:.1f}); x{r['ratio']:.2f}; "
                f"width {r['width']}, training at {r['gflops']:.1f} GFLOP/s per core vs the "
                f"stacked GEMMs' {r['gemm_gflops']:.1f}"
            )
