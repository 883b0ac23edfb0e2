"""clrbench's Keras optimizers against the numbers their references publish (fast tier: a
3-vector quadratic and a small least-squares problem, no model trained, no process started).

- optax's docstring vectors for schedule-free SGD and AdamW (``optax/contrib/_schedule_free.py``,
  ``schedule_free_sgd`` / ``schedule_free_adamw`` examples: f(x) = Σx² from [1, 2, 3], rate 1.0,
  f at the evaluation point after each of 5 steps), which the ``schedulefree`` package reproduces;
- Keras 3.15's own ``ScheduleFreeAdamW`` is not the reference (kept so that a fixed Keras shows);
- NAdamW and AdamW against a numpy transcription of AlgoPerf's baseline ``NAdamW.step``
  (``reference_algorithms/qualification_baselines/external_tuning/pytorch_nadamw_full_budget.py``)
  over 469 steps of a warmup + cosine rate, inside one ``tf.function``.

The PyTorch references themselves: tests/test_optimizers_torch.py (slow: its own process).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from clrbench.optimizers import AdamW, NAdamW, ScheduleFreeAdamW, ScheduleFreeSGD

START = [1.0, 2.0, 3.0]


def _quadratic(optimizer, steps: int = 5) -> tuple[list[float], np.ndarray]:
    """f(x) = Σx² from [1, 2, 3]: f at the evaluation point after each step (all steps in one
    tf.function), and the weights y after each step."""
    w = keras.Variable(np.array(START, np.float32))
    optimizer.build([w])
    evaluation = getattr(optimizer, "evaluation_weights", lambda: [w])

    @tf.function
    def run():
        values = tf.TensorArray(tf.float32, size=steps)
        weights = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(w.value * w.value)
            optimizer.apply_gradients([(tape.gradient(loss, w.value), w)])
            (x,) = evaluation()
            values = values.write(i, tf.reduce_sum(x * x))
            weights = weights.write(i, tf.convert_to_tensor(w))
        return values.stack(), weights.stack()

    values, weights = run()
    return [float(v) for v in values.numpy()], weights.numpy()


# optax/contrib/_schedule_free.py, the docstring examples of schedule_free_sgd() (rate 1.0) and
# schedule_free_adamw(1.0): "Objective function: {:.2E}" after each of 5 steps
OPTAX_SGD = [1.40e01, 1.75e-14, 9.96e-01, 8.06e-01, 2.41e-01]
OPTAX_ADAMW = [5.00e00, 3.05e00, 1.73e00, 8.94e-01, 4.13e-01]


def test_schedule_free_sgd_reproduces_optax_docstring_vector() -> None:
    values, _ = _quadratic(ScheduleFreeSGD(1.0))
    # step 2 lands on the minimum: 1.75e-14 is float32 round-off around 0 (x ≈ 1e-7), so it is
    # checked as round-off; the other four to the 3 digits optax prints
    assert values[1] < 1e-12
    others = [v for i, v in enumerate(values) if i != 1]
    expected = [v for i, v in enumerate(OPTAX_SGD) if i != 1]
    np.testing.assert_allclose(others, expected, rtol=5e-3)


def test_schedule_free_adamw_reproduces_optax_docstring_vector() -> None:
    values, _ = _quadratic(ScheduleFreeAdamW(1.0))
    np.testing.assert_allclose(values, OPTAX_ADAMW, rtol=5e-3)


# The reference's weights (y) after step 2 on optax's problem (schedulefree 1.4.1's
# AdamWScheduleFreeReference, lr 1.0), and what Keras 3.15.1's ScheduleFreeAdamW gives
REFERENCE_Y2 = [0.0, 0.6521, 1.5685]
KERAS_3_15_Y2 = [0.0, 0.6837, 1.6077]


def test_keras_own_schedule_free_adamw_is_not_the_reference() -> None:
    """Keras's update reads ``momentum.value`` as the old z after ``assign_sub`` changed it, so
    its x is recovered from the new z. If this fails, Keras has fixed it: reconsider using it
    (docs/guides/optimizers.md says why clrbench has its own)."""
    _, ours = _quadratic(ScheduleFreeAdamW(1.0), steps=2)
    _, theirs = _quadratic(keras.optimizers.ScheduleFreeAdamW(1.0), steps=2)
    np.testing.assert_allclose(ours[1], REFERENCE_Y2, atol=5e-5)
    np.testing.assert_allclose(theirs[1], KERAS_3_15_Y2, atol=5e-5)
    assert np.abs(theirs[1] - np.array(REFERENCE_Y2)).max() > 0.03


def test_evaluation_weights_are_x_not_y_and_leave_y_alone() -> None:
    optimizer = ScheduleFreeSGD(0.1, warmup_steps=3)
    values, weights = _quadratic(optimizer, steps=4)
    (x,) = (t.numpy() for t in optimizer.evaluation_weights())
    (y,) = (v.numpy() for v in optimizer._trainable_variables)
    np.testing.assert_array_equal(y, weights[-1])  # reading x changed nothing
    assert np.abs(x - y).max() > 1e-3
    assert values[-1] == pytest.approx(float(np.sum(x * x)), rel=1e-6)


def test_schedule_free_applied_rate_is_the_warmed_up_rate() -> None:
    optimizer = ScheduleFreeAdamW(0.01, warmup_steps=4)
    optimizer.build([keras.Variable(np.zeros(2, np.float32))])
    assert float(optimizer.applied_learning_rate()) == pytest.approx(0.01 / 4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ScheduleFreeSGD(momentum=1.0), "Momentum"),
        (lambda: ScheduleFreeSGD(weight_decay=-0.1), "weight_decay"),
        (lambda: ScheduleFreeAdamW(warmup_steps=-1), "warmup_steps"),
        (lambda: ScheduleFreeAdamW(betas=(0.9, 1.5)), "betas"),
        (lambda: NAdamW(weight_decay=-1.0), "weight_decay"),
    ],
)
def test_arguments_are_checked(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_config_round_trips() -> None:
    for optimizer in (
        ScheduleFreeSGD(0.5, momentum=0.8, weight_decay=0.01, warmup_steps=7, r=1.0),
        ScheduleFreeAdamW(0.01, betas=(0.95, 0.99), eps=1e-6, weight_decay=0.1, warmup_steps=3),
        NAdamW(0.002, beta_1=0.95, weight_decay=0.2),
    ):
        config = optimizer.get_config()
        again = type(optimizer).from_config(config).get_config()
        assert {k: v for k, v in again.items() if k != "name"} == {
            k: v for k, v in config.items() if k != "name"
        }


# --- AdamW / NAdamW against AlgoPerf's NAdamW.step, transcribed in numpy ---

STEPS = 469
PEAK, WARMUP = 0.01, 47


def _rates() -> np.ndarray:
    """AlgoPerf's baseline schedule shape: linear warmup, then cosine to 0 (float64)."""
    k = np.arange(STEPS, dtype=np.float64)
    cosine = 0.5 * PEAK * (1 + np.cos(np.pi * (k - WARMUP) / (STEPS - WARMUP)))
    return np.where(k < WARMUP, PEAK * k / WARMUP, cosine)


def _least_squares(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(64, 6)).astype(np.float32)
    b = rng.normal(size=64).astype(np.float32)
    return a, b, rng.normal(size=6).astype(np.float32)


def _algoperf_nadamw(
    nesterov: bool, beta1: float, beta2: float, eps: float, weight_decay: float
) -> np.ndarray:
    """The reference's update, line by line, in float32 with its scalars in float64; f(p) =
    mean((a p - b)²), gradient 2 aᵀ(a p - b) / n. Returns p after every step."""
    a, b, p = _least_squares()
    exp_avg, exp_avg_sq = np.zeros_like(p), np.zeros_like(p)
    f32, out = np.float32, []
    for step, lr in enumerate(_rates(), start=1):
        grad = (f32(2) * a.T @ (a @ p - b) / f32(len(b))).astype(np.float32)
        p = p * f32(1 - lr * weight_decay)
        exp_avg = exp_avg * f32(beta1) + f32(1 - beta1) * grad
        exp_avg_sq = exp_avg_sq * f32(beta2) + f32(1 - beta2) * grad * grad
        if nesterov:
            exp_avg = exp_avg * f32(beta1) + f32(1 - beta1) * grad
        step_size = lr / (1 - beta1**step)
        denom = np.sqrt(exp_avg_sq) / f32(math.sqrt(1 - beta2**step)) + f32(eps)
        p = p + f32(-step_size) * (exp_avg / denom)
        if nesterov:  # the reference undoes its Nesterov step on the stored moment
            exp_avg = (exp_avg - f32(1 - beta1) * grad) / f32(beta1)
        out.append(p.copy())
    return np.stack(out)


class _Table(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, rates: np.ndarray):
        self.rates = tf.constant(rates, tf.float32)

    def __call__(self, step):
        return tf.gather(self.rates, step)


def _keras_least_squares(optimizer) -> np.ndarray:
    a, b, start = _least_squares()
    p = keras.Variable(start)
    optimizer.build([p])
    a, b = tf.constant(a), tf.constant(b)

    @tf.function
    def run():
        out = tf.TensorArray(tf.float32, size=STEPS)
        for i in tf.range(STEPS):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(tf.linalg.matvec(a, p.value) - b))
            optimizer.apply_gradients([(tape.gradient(loss, p.value), p)])
            out = out.write(i, tf.convert_to_tensor(p))
        return out.stack()

    return run().numpy()


@pytest.mark.parametrize("cls", [AdamW, NAdamW])
@pytest.mark.parametrize(
    "hyper",
    [
        {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
        # AlgoPerf's qualification baseline's first tuning point (one_minus_beta1 0.0269)
        {
            "beta1": 1 - 0.02686663061,
            "beta2": 0.9981232922116359,
            "eps": 1e-8,
            "weight_decay": 0.16375311233774334,
        },
    ],
)
def test_adamw_and_nadamw_follow_algoperf_at_every_step(cls, hyper: dict) -> None:
    expected = _algoperf_nadamw(cls is NAdamW, **hyper)
    optimizer = cls(
        _Table(_rates().astype(np.float32)),
        beta_1=hyper["beta1"],
        beta_2=hyper["beta2"],
        epsilon=hyper["eps"],
        weight_decay=hyper["weight_decay"],
    )
    ours = _keras_least_squares(optimizer)
    scale = np.abs(expected).max(axis=1, keepdims=True)
    assert (np.abs(ours - expected) / scale).max() < 2e-5
    # the Nesterov line matters: the two optimizers part at the first step
    other = _algoperf_nadamw(cls is not NAdamW, **hyper)
    assert np.abs(other - expected).max() > 1e-3
