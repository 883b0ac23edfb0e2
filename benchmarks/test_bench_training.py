"""What clrbench's honest per-batch logging costs: one epoch of full MNIST, three ways.

Each measurement is a whole process (``python benchmarks/workloads.py MODE 1``): Python and
TensorFlow start-up, data loading, one epoch with its test evaluation. The benchmark time is
that process's wall time; the in-process training time (``fit`` only, printed by the
script) is recorded beside it in ``extra_info``, with both ratios to plain ``fit``.

``test_gate_logging_overhead`` is the gate: plain ``fit`` and clrbench's in-graph
per-iteration schedule with per-batch logging, interleaved over several rounds, medians
compared; the logging path must stay within 5% of plain ``fit`` in training time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).with_name("workloads.py")
REPO = WORKLOADS.parents[1]
MODES = ("plain", "clrbench", "callback")
EPOCHS = 1
GATE_ROUNDS = 5
GATE_LIMIT = 1.05

MEASURED: dict[str, dict[str, float]] = {}  # mode -> medians, for the ratios and the report


@pytest.fixture(scope="module")
def data_env():
    data = os.environ.get("CLRBENCH_DATA_DIR") or str(REPO.parent / "shared/data/mnist")
    if not (Path(data) / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST IDX files not found (set CLRBENCH_DATA_DIR)")
    return os.environ | {"CLRBENCH_DATA_DIR": data, "TF_CPP_MIN_LOG_LEVEL": "2"}


def whole_process(mode: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds of the whole process, in-process training seconds it printed)."""
    command = [sys.executable, str(WORKLOADS), mode, str(EPOCHS)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, float(done.stdout.strip().splitlines()[-1])


def medians(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "whole_s": statistics.median(w for w, _ in samples),
        "training_s": statistics.median(t for _, t in samples),
    }


def ratios(mode: dict[str, float], plain: dict[str, float]) -> dict[str, float]:
    return {
        "whole_process_ratio_to_plain": mode["whole_s"] / plain["whole_s"],
        "training_ratio_to_plain": mode["training_s"] / plain["training_s"],
    }


@pytest.mark.parametrize("mode", MODES)
def test_one_epoch_full_mnist(benchmark, mode, data_env, request):
    """One whole process per round, 3 rounds; no assertion: the numbers are the result."""
    benchmark.group = "training: one epoch of full MNIST, whole process"
    samples: list[tuple[float, float]] = []
    benchmark.pedantic(
        lambda: samples.append(whole_process(mode, data_env)), rounds=3, iterations=1
    )
    MEASURED[mode] = medians(samples)
    benchmark.extra_info |= MEASURED[mode] | {"training_s_rounds": [t for _, t in samples]}
    if mode != "plain" and "plain" in MEASURED:
        benchmark.extra_info |= ratios(MEASURED[mode], MEASURED["plain"])
    if mode == MODES[-1]:
        report(request)


def report(request) -> None:
    """Print the medians and the ratios to plain fit (the assertion-free report)."""
    write = request.config.pluginmanager.get_plugin("terminalreporter").write_line
    write("")
    write(f"one epoch of full MNIST, medians of {len(MODES)} modes x 3 whole processes:")
    for mode, measured in MEASURED.items():
        line = f"  {mode:9} whole process {measured['whole_s']:6.2f} s"
        line += f"   training {measured['training_s']:6.2f} s"
        if mode != "plain" and "plain" in MEASURED:
            r = ratios(measured, MEASURED["plain"])
            line += f"   x{r['whole_process_ratio_to_plain']:.3f} / "
            line += f"x{r['training_ratio_to_plain']:.3f} of plain fit"
        write(line)


def test_gate_logging_overhead(benchmark, data_env):
    """clrbench (in-graph schedule, per-batch logging) within 5% of plain fit's training time."""
    benchmark.group = "training gate: plain vs clrbench, interleaved"
    samples: dict[str, list[tuple[float, float]]] = {"plain": [], "clrbench": []}

    def interleaved() -> None:
        for round_ in range(GATE_ROUNDS):  # alternate the order: drift hits both alike
            order = ("plain", "clrbench") if round_ % 2 == 0 else ("clrbench", "plain")
            for mode in order:
                samples[mode].append(whole_process(mode, data_env))

    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    plain, logged = medians(samples["plain"]), medians(samples["clrbench"])
    found = ratios(logged, plain)
    benchmark.extra_info |= {"plain": plain, "clrbench": logged, **found}
    benchmark.extra_info["rounds"] = {m: [list(s) for s in v] for m, v in samples.items()}
    assert found["training_ratio_to_plain"] <= GATE_LIMIT, (
        f"per-batch logging costs {100 * (found['training_ratio_to_plain'] - 1):.1f}% of "
        f"training time over plain fit (median {logged['training_s']:.2f} s vs "
        f"{plain['training_s']:.2f} s over {GATE_ROUNDS} interleaved rounds; limit 5%); "
        f"whole process x{found['whole_process_ratio_to_plain']:.3f}"
    )
