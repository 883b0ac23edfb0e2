"""The optimizers' update rules on stacked weights: Keras' own ``update_step`` written out.

Each member has its own slots (a slice of each stacked slot variable) and its own rate; the
rules are Keras 3's (``keras/src/optimizers/{sgd,adam,rmsprop}.py``, ``update_step``), the
hyperparameters read from the Keras optimizer a separate run builds
(``clrbench.train.workload.build_optimizer``), so a variant this module does not write out
(Nesterov, AMSGrad, centered RMSprop, weight decay, clipping, EMA, or another class) is refused
with one line.
"""

from __future__ import annotations

from typing import Any

from clrbench.errors import ConfigError
from clrbench.train import workload


def keras_hyperparameters(name: str) -> dict[str, Any]:
    """The Keras optimizer a separate run builds, as the numbers its update rule reads;
    ConfigError for a variant this module does not implement."""
    optimizer = workload.build_optimizer(name, 0.01)
    kind = type(optimizer).__name__
    unsupported = [
        flag
        for flag in ("nesterov", "amsgrad", "centered", "use_ema")
        if getattr(optimizer, flag, False)
    ]
    for flag in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
        if getattr(optimizer, flag, None):
            unsupported.append(flag)
    if kind == "RMSprop" and optimizer.momentum > 0:
        unsupported.append("momentum")
    if kind not in ("SGD", "Adam", "RMSprop") or unsupported:
        raise ConfigError(
            f"optimizer {name!r} ({kind}{' with ' + ', '.join(unsupported) if unsupported else ''})"
            " cannot be stacked; use --no-stack"
        )
    names = {
        "SGD": ("momentum",),
        "Adam": ("beta_1", "beta_2", "epsilon"),
        "RMSprop": ("rho", "epsilon"),
    }
    return {"kind": kind, **{key: float(getattr(optimizer, key)) for key in names[kind]}}


def slot_count(hyper: dict[str, Any]) -> int:
    if hyper["kind"] == "SGD":
        return 1 if hyper["momentum"] != 0 else 0
    return 2 if hyper["kind"] == "Adam" else 1


def update(hyper: dict[str, Any], tf: Any, variable, gradient, slots, lr, step) -> tuple:
    """One Keras update of ``variable`` (stacked) by ``gradient``: the new value and slots.
    ``lr`` broadcasts over the variable (one rate per member), ``step`` is the optimizer's
    iteration count before the update."""
    kind = hyper["kind"]
    if kind == "SGD":
        if not slots:
            return variable - gradient * lr, ()
        (m,) = slots  # keras SGD: m = m * momentum - g * lr; w += m
        m = m * tf.constant(hyper["momentum"], variable.dtype) - gradient * lr
        return variable + m, (m,)
    if kind == "Adam":
        beta_1, beta_2 = hyper["beta_1"], hyper["beta_2"]
        local_step = tf.cast(step + 1, variable.dtype)
        beta_1_power = tf.pow(tf.constant(beta_1, variable.dtype), local_step)
        beta_2_power = tf.pow(tf.constant(beta_2, variable.dtype), local_step)
        m, v = slots
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = m + (gradient - m) * (1 - beta_1)
        v = v + (tf.square(gradient) - v) * (1 - beta_2)
        return variable - (m * alpha) / (tf.sqrt(v) + hyper["epsilon"]), (m, v)
    rho = hyper["rho"]  # RMSprop, plain (no momentum, not centered)
    (velocity,) = slots
    velocity = rho * velocity + (1 - rho) * tf.square(gradient)
    increment = (lr * gradient) / tf.sqrt(velocity + hyper["epsilon"])
    return variable - increment, (velocity,)
