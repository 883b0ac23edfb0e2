"""Which devices a suite trains on, and whether it stacks its runs.

This process never imports TensorFlow (``tests/test_layers.py``), so the GPUs TensorFlow sees
are asked of a child process (``python -m clrbench.train.devices``), and only where an NVIDIA
driver is present at all: on a machine without one the answer is "none" at no cost.

Stacking (``clrbench.train.stacked``) is used where it was measured faster: on a GPU, where one
small run leaves the device idle. On a CPU a stack costs what its runs cost separately (the
step is two GEMMs either way; ``benchmarks/README.md``) and a stack is one job, so the suite's
parallelism over cores would shrink: separate runs there.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def resolve_stack(stack: bool | str | None) -> bool:
    """Whether to stack: ``True``/``"on"``, ``False``/``"off"``, or ``None``/``"auto"``: on a GPU
    yes, on a CPU no (see the module docstring)."""
    if stack is None or stack == "auto":
        return bool(visible_gpus())
    if isinstance(stack, bool):
        return stack
    if stack in ("on", "off"):
        return stack == "on"
    from clrbench.errors import ConfigError

    raise ConfigError(f"stack must be one of {', '.join(STACK_CHOICES)}, got {stack!r}")


def worker_devices(jobs: int) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` for each of ``jobs`` workers when there are several GPUs (worker i
    on GPU i mod n), else None (one GPU, or none: every worker sees what this process sees)."""
    count = len(visible_gpus())
    if count < 2:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return [ids[i % count] for i in range(jobs)]
