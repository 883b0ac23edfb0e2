"""Runs per hour, separate vs stacked, on this machine's CPU (issue 24).

Each measurement is a whole ``python -m clrbench run`` process (``--jobs 2 --no-report``) on full
MNIST, with ``--no-stack`` and ``--stack``, interleaved (round r runs both, in an order that
alternates with r, so drift on the shared machine hits both alike):

- ``suite``: the default suite's shape for one seed: its five schedules, ``EPOCHS`` epochs;
  separately that is 5 jobs over the 2 workers, stacked one job of 5 members;
- ``suite-2-seeds``: the same for 2 seeds: 2 stacks, so both cores train stacked too;
- ``study``: a study's shape: ``TRIALS`` trials of one family (constant rates on a log grid, as
  the study samples them) sharing a seed.

Reported per process: wall seconds, runs per hour (runs / wall), and the CPU seconds the process
tree used per run (``RUSAGE_CHILDREN``: less sensitive than wall time to the other engineers'
load on the machine), with the load average before and after. Nothing is asserted about which
is faster: the numbers decide ``--stack``'s default per device (``clrbench.suite.devices``).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time

import pytest
from test_bench_training import REPO

EPOCHS, ROUNDS, TRIALS = 2, 2, 8


def study_toml(path) -> str:
    rates = [round(0.01 * 2 ** (i / 2), 5) for i in range(TRIALS)]  # 0.01 .. 0.11
    lines = ['[experiment]\nname = "study-shape"\nseeds = [0]\n']
    for i, lr in enumerate(rates):
        lines.append(f'[[schedule]]\nlabel = "c{i}"\nname = "constant"\nlr = {lr}\n')
    path.write_text("\n".join(lines))
    return str(path)


def measure(args: list[str], runs: int, env: dict[str, str], out) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "clrbench", "run", *args, "--jobs", "2", "--no-report"]
    command += ["--quiet", "--force", "--out", str(out), "--epochs", str(EPOCHS)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall,
        "runs_per_hour": runs * 3600 / wall,
        "cpu_s_per_run": cpu / runs,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def test_runs_per_hour_separate_vs_stacked(benchmark, data_env, tmp_path, capsys):
    benchmark.group = "runs per hour: separate vs stacked (2 CPU cores)"
    shapes = {
        "suite": (["--preset", "default", "--seeds", "1"], 5),
        "suite-2-seeds": (["--preset", "default", "--seeds", "2"], 10),
        "study": (["--config", study_toml(tmp_path / "study.toml")], TRIALS),
    }
    samples: dict[str, list[dict[str, float]]] = {}

    def interleaved() -> None:
        for round_ in range(ROUNDS):
            for shape, (args, runs) in shapes.items():
                modes = ["--no-stack", "--stack"][:: 1 if round_ % 2 == 0 else -1]
                for mode in modes:
                    out = tmp_path / f"{shape}{mode}"
                    sample = measure([*args, mode], runs, data_env, out)
                    samples.setdefault(f"{shape} {mode.lstrip('-')}", []).append(sample)

    t0 = time.perf_counter()
    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    medians = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    benchmark.extra_info |= {"medians": medians, "samples": samples}
    with capsys.disabled():
        print(f"\n{EPOCHS} epochs of full MNIST, --jobs 2, medians of {ROUNDS} ({wall:.0f} s):")
        for name, m in medians.items():
            print(
                f"  {name:24} {m['wall_s']:6.1f} s  {m['runs_per_hour']:6.0f} runs/h  "
                f"{m['cpu_s_per_run']:5.1f} CPU s/run  load {m['load_before']:.1f}"
                f"->{m['load_after']:.1f}"
            )
