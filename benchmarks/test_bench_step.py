"""What one training step costs: clrbench against the lean TensorFlow loop, PyTorch and Keras.

One benchmark, all paths interleaved (round r runs every mode once, in an order that rotates
with r, so drift on the machine hits all alike), each a whole process training 3 epochs of
full MNIST (``python benchmarks/workloads.py MODE 3``) with one thread, the default workload
(784-512-10, batch 128, SGD momentum 0.9, a triangular rate per step):

- ``lean``: the hand-written TensorFlow loop (one ``tf.function`` per epoch, ``tf.while_loop``
  over batches gathered in-graph, plain momentum update, each batch's loss in a TensorArray);
- ``clrbench``: a clrbench run (the lean trainer, ``clrbench.train.loop``), logging each
  batch's rate, loss, accuracy and size;
- ``torch`` / ``torch-nolog``: PyTorch eager with ``CyclicLR`` per step, with and without
  reading each batch's values to Python;
- ``clrbench-fit`` / ``plain-chunked``: clrbench through Keras ``fit`` (``trainer = "fit"``) and
  stock Keras ``fit`` with the same ``steps_per_execution``.

A process's step cost is the median of its epochs 2-3 (epoch 1 pays the tracing) of the
training steps' seconds alone, over 469 steps; the benchmark's figure is the median over
rounds. The goal (issue 16) is asserted: clrbench <= 1.10 x lean, and faster than PyTorch
eager without its logging.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import pytest
from test_bench_training import REPO, WORKLOADS

MODES = ("lean", "clrbench", "torch", "torch-nolog", "clrbench-fit", "plain-chunked")
EPOCHS, ROUNDS, STEPS = 3, 3, 469
LEAN_LIMIT = 1.10


def ms_per_step(mode: str, env: dict[str, str]) -> float:
    command = [sys.executable, str(WORKLOADS), mode, str(EPOCHS)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    steps_s = json.loads(done.stdout.strip().splitlines()[-1])["steps_s"]
    return 1000 * statistics.median(steps_s[1:]) / STEPS


def test_step_cost_side_by_side(benchmark, data_env, capsys):
    benchmark.group = "training step: clrbench vs lean TF loop vs PyTorch vs Keras fit"
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}

    def interleaved() -> None:
        for round_ in range(ROUNDS):
            order = MODES[round_ % len(MODES) :] + MODES[: round_ % len(MODES)]
            for mode in order:
                samples[mode].append(ms_per_step(mode, data_env))

    t0 = time.perf_counter()
    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    ms = {mode: statistics.median(values) for mode, values in samples.items()}
    ratios = {f"{mode}/lean": ms[mode] / ms["lean"] for mode in MODES if mode != "lean"}
    ratios["clrbench/torch-nolog"] = ms["clrbench"] / ms["torch-nolog"]
    ratios["clrbench/torch"] = ms["clrbench"] / ms["torch"]
    benchmark.extra_info |= {"ms_per_step": ms, "ratios": ratios, "rounds": samples}
    with capsys.disabled():
        print(f"\nms per step, medians of {ROUNDS} interleaved processes ({wall:.0f} s):")
        for mode in MODES:
            rounds = ", ".join(f"{v:.3f}" for v in samples[mode])
            print(f"  {mode:14} {ms[mode]:6.3f}   ({rounds})")
        for name, value in ratios.items():
            print(f"  {name:22} x{value:.3f}")
    assert ratios["clrbench/lean"] <= LEAN_LIMIT, ratios
    assert ms["clrbench"] < ms["torch-nolog"], ms
