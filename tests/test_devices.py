"""Devices: GPU discovery and sharing, stacking's auto choice, workers pinned to GPUs.

The GPU tests run wherever TensorFlow sees a GPU and skip elsewhere with the reason; whether it
sees one is asked in a child process (``clrbench.suite.devices.visible_gpus``), as the suite asks.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.errors import ConfigError
from clrbench.schedules import make
from clrbench.suite import devices
from clrbench.suite.pool import WorkerPool

GPUS = devices.visible_gpus()
needs_gpu = pytest.mark.skipif(
    not GPUS, reason="no GPU visible to TensorFlow here (needs a GPU build and an NVIDIA driver)"
)


def test_stack_choices():
    assert devices.resolve_stack("on") is devices.resolve_stack(True) is True
    assert devices.resolve_stack("off") is devices.resolve_stack(False) is False
    assert devices.resolve_stack("auto") is devices.resolve_stack(None) is None  # per workload
    assert devices.choose_stack(None, "mnist-mlp").on is bool(GPUS)
    with pytest.raises(ConfigError, match="stack must be one of auto, on, off"):
        devices.resolve_stack("sometimes")


def _visible(_item):
    return os.environ.get("CUDA_VISIBLE_DEVICES")


@pytest.mark.slow
def test_each_worker_sees_only_its_gpu():
    """Real worker processes: with devices ["3", "5"] the two workers hold one each (the values
    are never used as GPUs here, only read back)."""
    with WorkerPool(2, devices=["3", "5"]) as pool:
        seen = [result for _, result in pool.map_unordered(_visible, range(6))]
        assert sorted(w.device for w in pool.workers) == ["3", "5"]
    assert set(seen) <= {"3", "5"}


def _spec(label: str, lr: float, epochs: int = 1) -> RunSpec:
    return RunSpec(label, make("constant", lr=lr), 2, Workload(epochs=epochs, train_size=2000))


@needs_gpu
@pytest.mark.slow
def test_runs_train_on_the_gpu_and_say_so(mnist_dir):
    from clrbench.train.run import train_run
    from clrbench.train.stacked import train_stack

    alone = train_run(_spec("a", 0.05), data_dir=str(mnist_dir))
    (member,) = train_stack([_spec("a", 0.05)], data_dir=str(mnist_dir))
    assert alone.info["device"] == member.info["device"] == GPUS[0]


@needs_gpu
@pytest.mark.slow
def test_gpu_runs_repeat_bitwise_and_stacks_agree(mnist_dir):
    """Op determinism on the GPU: the same run twice gives the same log bitwise; a stack's
    member agrees with its separate run to float32 rounding over 16 steps."""
    from clrbench.train.run import train_run
    from clrbench.train.stacked import train_stack

    specs = [_spec("a", 0.05), _spec("b", 0.1)]
    first, again = (train_run(specs[0], data_dir=str(mnist_dir)) for _ in range(2))
    assert first.batches[["lr", "loss", "accuracy"]].equals(
        again.batches[["lr", "loss", "accuracy"]]
    )
    for spec, member in zip(specs, train_stack(specs, data_dir=str(mnist_dir)), strict=True):
        alone = first if spec is specs[0] else train_run(spec, data_dir=str(mnist_dir))
        np.testing.assert_array_equal(member.batches["lr"], alone.batches["lr"])
        np.testing.assert_allclose(member.batches["loss"], alone.batches["loss"], rtol=1e-4)


@needs_gpu
@pytest.mark.slow
def test_several_workers_share_one_gpu(tmp_path, mnist_dir):
    """Two workers train at once on the GPU(s) (memory growth: neither reserves it all); every
    run completes and records the GPU that trained it."""
    from clrbench.config.experiment import Experiment
    from clrbench.store.results import read_record, run_dir
    from clrbench.suite.runner import run_suite

    data = {
        "experiment": {"name": "gpu", "epochs": 1, "seeds": 2, "train_size": 2000},
        "schedule": [{"label": "constant", "name": "constant", "lr": 0.05}],
    }
    outcome = run_suite(Experiment.from_dict(data), tmp_path, jobs=2, data_dir=str(mnist_dir))
    assert not outcome.failed and len(outcome.records) == 2
    for run_id in outcome.records:
        assert read_record(run_dir(tmp_path, run_id)).provenance["device"] in GPUS
