"""clrbench's optimizers against their reference implementations' own numbers, step by step.

The references run in their own interpreter (tests/optimizer_reference.py: PyTorch and the
``schedulefree`` package, 1.4.1's ``SGDScheduleFreeReference`` / ``AdamWScheduleFreeReference``,
and ``torch.optim.AdamW``); this process trains the same network from the same weights on the same
batches with the Keras optimizers inside one ``tf.function`` (a ``tf.while_loop`` over every step,
as the lean loop runs them) and compares the weights y and the evaluation point x after every one
of 469 steps (one MNIST epoch), with warmup and weight decay on. Skipped, with the reason, where
torch or schedulefree is not installed (CI installs both: .ci/run).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # starts a process

for _package in ("torch", "schedulefree"):
    try:  # asked of the metadata: this process must not import torch
        importlib.metadata.distribution(_package)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            f"{_package} not installed: the reference cross-check needs "
            "`pip install torch schedulefree`",
            allow_module_level=True,
        )

REFERENCE = Path(__file__).with_name("optimizer_reference.py")
STEPS = 469  # one epoch of MNIST at batch 128: the run length the loop compiles
BATCH = 32

CASES = {
    "sgd": {
        "module": "schedulefree",
        "optimizer": "SGDScheduleFreeReference",
        "kwargs": {"lr": 0.5, "momentum": 0.9, "weight_decay": 5e-3, "warmup_steps": 50},
    },
    "sgd-r": {
        "module": "schedulefree",
        "optimizer": "SGDScheduleFreeReference",
        "kwargs": {
            "lr": 0.2,
            "momentum": 0.8,
            "weight_decay": 1e-3,
            "warmup_steps": 30,
            "r": 1.0,
            "weight_lr_power": 1.0,
        },
    },
    "adamw": {
        "module": "schedulefree",
        "optimizer": "AdamWScheduleFreeReference",
        "kwargs": {"lr": 0.01, "weight_decay": 0.05, "warmup_steps": 50},
    },
    "adamw-betas": {
        "module": "schedulefree",
        "optimizer": "AdamWScheduleFreeReference",
        "kwargs": {
            "lr": 0.005,
            "betas": [0.95, 0.99],
            "eps": 1e-6,
            "weight_decay": 0.1,
            "warmup_steps": 100,
            "r": 0.5,
        },
    },
    "torch-adamw": {
        "module": "torch.optim",
        "optimizer": "AdamW",
        "kwargs": {"lr": 0.01, "weight_decay": 0.05, "foreach": False},
    },
}


def _problem() -> dict[str, np.ndarray]:
    """A 4-class problem of 20 features (a noisy linear teacher), a 20-16-4 ReLU network's
    Glorot-uniform initial weights, and 469 batches of 32 from seeded permutations."""
    rng = np.random.default_rng(7)
    n, d, h, c = 512, 20, 16, 4
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = np.argmax(x @ rng.normal(size=(d, c)) + rng.normal(size=(n, c)), axis=1)

    def glorot(fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)

    order = np.concatenate([rng.permutation(n) for _ in range(STEPS * BATCH // n + 1)])
    return {
        "x": x,
        "labels": labels.astype(np.int64),
        "w1": glorot(d, h),
        "b1": np.zeros(h, np.float32),
        "w2": glorot(h, c),
        "b2": np.zeros(c, np.float32),
        "batches": order[: STEPS * BATCH].reshape(STEPS, BATCH),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("optimizer-reference")
    problem = _problem()
    cases, problem_path, out = folder / "cases.json", folder / "problem.npz", folder / "out.npz"
    cases.write_text(json.dumps(CASES))
    np.savez(problem_path, **problem)
    done = subprocess.run(
        [sys.executable, str(REFERENCE), str(cases), str(problem_path), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return problem, dict(np.load(out))


def _keras(optimizer, problem: dict) -> dict[str, np.ndarray]:
    """The same training with a Keras optimizer, every step inside one tf.function."""
    import keras
    import tensorflow as tf

    params = [keras.Variable(problem[k]) for k in ("w1", "b1", "w2", "b2")]
    optimizer.build(params)
    x_all = tf.constant(problem["x"])
    labels = tf.constant(problem["labels"].astype(np.int32))
    batches = tf.constant(problem["batches"].astype(np.int32))
    evaluation = getattr(optimizer, "evaluation_weights", lambda: params)

    @tf.function
    def run():
        rows = tf.TensorArray(tf.float32, size=STEPS)  # per step: every y, then every x, flat
        losses = tf.TensorArray(tf.float32, size=STEPS)
        for step in tf.range(STEPS):
            index = batches[step]
            with tf.GradientTape() as tape:
                w1, b1, w2, b2 = params
                hidden = tf.nn.relu(tf.gather(x_all, index) @ w1 + b1)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(
                        tf.gather(labels, index), hidden @ w2 + b2
                    )
                )
            grads = tape.gradient(loss, [p.value for p in params])
            optimizer.apply_gradients(zip(grads, params, strict=True))
            losses = losses.write(step, loss)
            flat = [tf.reshape(tf.convert_to_tensor(v), [-1]) for v in [*params, *evaluation()]]
            rows = rows.write(step, tf.concat(flat, 0))
        return rows.stack(), losses.stack()

    rows, losses = (t.numpy() for t in run())
    out = {"loss": losses}
    shapes = [problem[k].shape for k in ("w1", "b1", "w2", "b2")]
    sizes = [int(np.prod(shape)) for shape in shapes]
    parts = np.split(rows, np.cumsum(sizes * 2)[:-1], axis=1)
    for i, shape in enumerate(shapes):
        out[f"y{i}"] = parts[i].reshape(STEPS, *shape)
        out[f"x{i}"] = parts[len(shapes) + i].reshape(STEPS, *shape)
    return out


def _keras_optimizer(case: dict):
    from clrbench.optimizers import AdamW, ScheduleFreeAdamW, ScheduleFreeSGD

    kwargs = dict(case["kwargs"])
    rate = kwargs.pop("lr")
    if case["optimizer"] == "SGDScheduleFreeReference":
        return ScheduleFreeSGD(rate, **kwargs)
    if case["optimizer"] == "AdamWScheduleFreeReference":
        kwargs["betas"] = tuple(kwargs.get("betas", (0.9, 0.999)))
        return ScheduleFreeAdamW(rate, **kwargs)
    kwargs.pop("foreach")
    return AdamW(rate, **kwargs)


# float32 arithmetic in another order (PyTorch fuses a·b + c): the references and clrbench
# agree to this relative tolerance at every step (measured: see the assertion's message)
RTOL = 2e-5


@pytest.mark.parametrize("case", list(CASES))
def test_weights_and_evaluation_point_match_the_reference_at_every_step(
    case: str, reference: tuple[dict, dict]
) -> None:
    problem, computed = reference
    ours = _keras(_keras_optimizer(CASES[case]), problem)
    worst = 0.0
    for name in ("y0", "y1", "y2", "y3", "x0", "x1", "x2", "x3"):
        theirs = computed[f"{case}/{name}"]
        assert ours[name].shape == theirs.shape
        scale = np.abs(theirs).max(axis=tuple(range(1, theirs.ndim)), keepdims=True)
        error = np.abs(ours[name] - theirs) / np.maximum(scale, 1e-6)
        worst = max(worst, float(error.max()))
    assert worst < RTOL, f"{case}: largest step-wise difference {worst:.2e} of the weights' scale"
    np.testing.assert_allclose(ours["loss"], computed[f"{case}/loss"], rtol=1e-4)
    # the run moved: x and y differ, and the loss fell
    if case != "torch-adamw":
        assert np.abs(ours["x0"][-1] - ours["y0"][-1]).max() > 1e-3
    assert ours["loss"][-50:].mean() < 0.7 * ours["loss"][:10].mean()
