"""The accelerator side of a run: which device trains it, and how several runs share a GPU.

With a GPU build of TensorFlow (``pip install 'tensorflow[and-cuda]'``) a run's ops are placed on
the first visible GPU. TensorFlow's default is to reserve nearly all of a GPU's memory for the
first process that touches it; a suite trains several runs at once per GPU, so each process
asks for memory growth instead (it must be set before the runtime starts, as the thread budget
is). Op determinism (``tf.config.experimental.enable_op_determinism``, set by
``clrbench.train.run.configure_tensorflow``) holds on GPU too: TensorFlow picks deterministic
cuDNN/cuBLAS algorithms and raises for an op without one, so a GPU run repeats bitwise on the
same GPU model, driver, CUDA and TensorFlow; it does not equal the CPU's numbers (other
kernels, other rounding), which is why the record says which device trained it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

CPU = "CPU"


def share_gpus(tf: Any) -> None:
    """Let the runs of this process's GPUs grow their memory rather than reserve all of it
    (before the runtime starts; afterwards TensorFlow keeps what it has)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError):  # the runtime already started in this process
            tf.config.experimental.set_memory_growth(gpu, True)


def training_device(tf: Any) -> str:
    """What trains this process's runs: the first visible GPU's name, else ``CPU``."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return CPU
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name") or gpus[0].name)


def main() -> None:
    """Print the visible GPUs' names as JSON (run in a child process by ``clrbench.suite``, which
    must not import TensorFlow)."""
    from clrbench.train import quiet

    tf = quiet.import_tensorflow()
    names = [
        str(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    json.dump(names, sys.stdout)


if __name__ == "__main__":
    main()
