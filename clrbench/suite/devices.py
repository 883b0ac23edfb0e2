"""Which devices a suite trains on, and whether and how wide it stacks its runs.

This process never imports TensorFlow (``tests/test_layers.py``), so the GPUs TensorFlow sees
are asked of a child process (``python -m clrbench.train.devices``), and only where an NVIDIA
driver is present at all: on a machine without one the answer is "none" at no cost.

Stacking (``clrbench.train.stacked``) is used where it was measured faster
(:data:`CPU_STACKING`, from ``benchmarks/test_bench_wide.py``): on a CPU for the workloads whose
step is too small to keep a core's GEMM units busy alone (``mnist1d-mlp``), not for MNIST's
Dense-512 step, which already runs at the GEMM rate; on a GPU always (one small run leaves
the device idle). The width (members per stack) is the measured one
(``benchmarks/stack_width.py``), or the user's.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from clrbench.config.experiment import StackChoice

NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
PROBE_TIMEOUT_S = 120
STACK_CHOICES = ("auto", "on", "off")


def _nvidia_driver() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False  # GPUs hidden on purpose
    return (NVIDIA_PROC.is_dir() and any(NVIDIA_PROC.iterdir())) or bool(shutil.which("nvidia-smi"))


@functools.cache
def visible_gpus() -> tuple[str, ...]:
    """The names of the GPUs TensorFlow would train on here (none without a GPU build or a
    driver)."""
    if not _nvidia_driver():
        return ()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "clrbench.train.devices"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=True,
        )
        return tuple(json.loads(done.stdout or "[]"))
    except (OSError, subprocess.SubprocessError, ValueError):
        return ()


def resolve_stack(stack: bool | str | None) -> bool | None:
    """``True``/``"on"``, ``False``/``"off"``, or ``None`` for ``None``/``"auto"`` (decided per
    workload by :func:`choose_stack`); ConfigError for anything else."""
    if stack is None or stack == "auto":
        return None
    if isinstance(stack, bool):
        return stack
    if stack in ("on", "off"):
        return stack == "on"
    from clrbench.errors import ConfigError

    raise ConfigError(f"stack must be one of {', '.join(STACK_CHOICES)}, got {stack!r}")


# Measured on the project's 2-core CPU, shared and loaded (benchmarks/README.md, "Wide stacks"):
# per workload, the width (benchmarks/stack_width.py: 8 best of 4-96) and what decided it (None:
# not stacked; mnist-mlp's Dense-512 step is GEMM-bound alone, benchmarks/test_bench_stacked.py).
CPU_STACKING: dict[str, tuple[int, str | None]] = {
    "mnist1d-mlp": (
        8,
        "measured x1.07 (suite, 100 epochs) to x3.6 (80-trial tuning phase, 20 epochs) the "
        "runs per hour on a CPU",
    ),
    "mnist-mlp": (8, None),
    "fashion-mnist-mlp": (8, None),
}
CPU_NOT_FASTER = "not faster on a CPU: its step already runs at the GEMM rate alone"
GPU_WIDTH = 64  # not measured yet: benchmarks/gpu.sh
DEFAULT_WIDTH = 16


def choose_stack(
    stack: bool | str | None, workload_name: str, width: int | None = None
) -> StackChoice:
    """The stacking of a plan on ``workload_name`` (``clrbench.config.workloads.name_of``):
    ``stack`` as :func:`resolve_stack` reads it, auto by measurement; ``width`` overrides the
    measured width (ConfigError below 1)."""
    from clrbench.errors import ConfigError

    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ConfigError(f"--stack-width must be a positive integer, got {width!r}")
    asked = resolve_stack(stack)
    gpu = bool(visible_gpus())
    measured_width, measured = CPU_STACKING.get(workload_name, (DEFAULT_WIDTH, None))
    default_width = GPU_WIDTH if gpu else measured_width
    chosen_width = width or default_width
    where = f"width {chosen_width}" + (" (--stack-width)" if width else "")
    if asked is not None:
        said = "--stack" if asked else "--no-stack"
        return StackChoice(asked, chosen_width, f"{said}, {where}" if asked else said)
    if gpu:
        return StackChoice(True, chosen_width, f"auto: on a GPU, {where}")
    if measured is not None:
        return StackChoice(True, chosen_width, f"auto: {workload_name} {measured}, {where}")
    if workload_name in CPU_STACKING:
        return StackChoice(False, chosen_width, f"auto: {workload_name} {CPU_NOT_FASTER}")
    return StackChoice(False, chosen_width, f"auto: {workload_name} not measured on a CPU")


def worker_devices(jobs: int) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` for each of ``jobs`` workers when there are several GPUs (worker i
    on GPU i mod n), else None (one GPU, or none: every worker sees what this process sees)."""
    count = len(visible_gpus())
    if count < 2:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return [ids[i % count] for i in range(jobs)]
