"""Schedule-free SGD and AdamW (Defazio et al. 2024, arXiv 2405.15682) as Keras 3 optimizers,
exact to the released reference: the ``schedulefree`` package 1.4.1, its
``SGDScheduleFreeReference`` and ``AdamWScheduleFreeReference`` (``*_reference.py``).

Per step k (0-based), the scalars in float64 as the reference computes them in Python::

    sched = (k + 1) / W if k < W else 1          (W: warmup_steps)
    lr_k  = lr · sched;   lr_max = max(lr_max, lr_k)          (lr_max starts at -1)
    w_k   = (k + 1)^r · lr_max^weight_lr_power;   S = S + w_k;   c = w_k / S   (0 if S = 0)

then, per variable (y: the model's weights, where the gradient g is taken)::

    SGD:    g = g + wd · y;   z = z − lr_k · g
    AdamW:  z = z − lr_k · wd · y;   v = β2 · v + (1 − β2) · g²
            z = z − lr_k · g / (√(v / (1 − β2^(k+1))) + eps)
    both:   x = (1 − c) · x + c · z;   y = β · x + (1 − β) · z      (β: momentum, or β1)

z and x start at the weights of the first step (the reference clones them then). The model
trains at y; it is *evaluated* at x, which ``evaluation_weights()`` returns. x is kept as a slot
as the reference keeps it (not recovered from y and z: ``(y − (1 − β) z) / β`` loses digits).

Every old value is read into a tensor before anything is assigned: a Keras variable's ``value``
can alias the variable, and Keras 3.15's own ``keras.optimizers.ScheduleFreeAdamW`` reads its z
after ``assign_sub`` has changed it, so its x comes from the new z (``docs/guides/optimizers.md``).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def _check(name: str, value: float, low: float, high: float = math.inf) -> float:
    """``value`` as a float if ``low <= value <= high``, else ValueError (as the reference)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return float(value)


class _ScheduleFree(keras.optimizers.Optimizer):
    """The part both share: the averaging scalars, the x and z slots, evaluation weights."""

    def __init__(
        self,
        learning_rate: Any,
        *,
        weight_decay: float,
        warmup_steps: int,
        r: float,
        weight_lr_power: float,
        name: str | None,
        **kwargs: Any,
    ) -> None:
        weight_decay = _check("weight_decay", weight_decay, 0.0)
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.r = _check("r", r, 0.0)
        self.weight_lr_power = _check("weight_lr_power", weight_lr_power, 0.0)

    # the slots and scalars

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._z, self._x = self.add_optimizer_variables(var_list, ["z", "x"])
        self._lr_max = self.add_variable(
            shape=(), initializer=keras.initializers.Constant(-1.0), dtype="float64", name="lr_max"
        )
        self._weight_sum = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="weight_sum"
        )

    def _apply_weight_decay(self, variables: list) -> None:
        """Nothing: the update applies weight decay where the reference does (not Keras's
        ``w -= w · wd · lr`` before the step)."""

    def _scalars(self, learning_rate: Any) -> tuple[Any, Any, Any, Any]:
        """This step's (lr_k, c, lr_max, S) in float64, from the scalars of the step before."""
        k = ops.cast(self.iterations, "float64")
        lr = ops.cast(learning_rate, "float64")
        if self.warmup_steps > 0:
            lr = lr * ops.where(k < self.warmup_steps, (k + 1.0) / self.warmup_steps, 1.0)
        lr_max = ops.maximum(ops.convert_to_tensor(self._lr_max), lr)
        weight = ops.power(k + 1.0, self.r) * ops.power(lr_max, self.weight_lr_power)
        weight_sum = ops.convert_to_tensor(self._weight_sum) + weight
        safe = ops.where(weight_sum > 0, weight_sum, 1.0)
        c = ops.where(weight_sum > 0, weight / safe, 0.0)
        return lr, c, lr_max, weight_sum

    def applied_learning_rate(self) -> Any:
        """The rate this step applies: the learning rate times the warmup factor (lr_k)."""
        return self._scalars(self.learning_rate)[0]

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any):
        """Every variable's update (they read the scalars of the step before), then the scalars
        move on once for the step, as the reference's ``group`` values do."""
        _, _, lr_max, weight_sum = self._scalars(learning_rate)
        super()._backend_update_step(grads, trainable_variables, learning_rate)
        self._lr_max.assign(lr_max)
        self._weight_sum.assign(weight_sum)

    def _start(self, variable: Any) -> tuple[Any, Any, Any, Any, Any]:
        """The old y, z, x (z and x: y itself at the first step) as tensors, and the slots."""
        index = self._get_variable_index(variable)
        z_slot, x_slot = self._z[index], self._x[index]
        y = ops.convert_to_tensor(variable)  # read now, before any assignment
        first = ops.equal(self.iterations, 0)
        z = ops.where(first, y, ops.convert_to_tensor(z_slot))
        x = ops.where(first, y, ops.convert_to_tensor(x_slot))
        return y, z, x, z_slot, x_slot

    def _finish(self, variable: Any, z: Any, x: Any, c: Any, slots: tuple[Any, Any]) -> None:
        """x = (1 − c)·x + c·z, y = β·x + (1 − β)·z; assign z, x and y."""
        dtype = z.dtype
        x = x * ops.cast(1.0 - c, dtype) + ops.cast(c, dtype) * z
        beta = self._interpolation
        y = x * ops.cast(beta, dtype) + ops.cast(1.0 - beta, dtype) * z
        self.assign(slots[0], z)
        self.assign(slots[1], x)
        self.assign(variable, y)

    @property
    def _interpolation(self) -> float:
        raise NotImplementedError

    def evaluation_weights(self) -> list[Any]:
        """x, the point to evaluate at, for the variables this optimizer trains, in their order
        (before the first step: the variables themselves)."""
        first = ops.equal(self.iterations, 0)
        return [
            ops.where(first, ops.convert_to_tensor(v), ops.convert_to_tensor(x))
            for v, x in zip(self._trainable_variables, self._x, strict=True)
        ]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config |= {
            "warmup_steps": self.warmup_steps,
            "r": self.r,
            "weight_lr_power": self.weight_lr_power,
        }
        return config


class ScheduleFreeSGD(_ScheduleFree):
    """Schedule-free SGD, exact to ``schedulefree.SGDScheduleFreeReference`` (same arguments
    and defaults; weight decay is an L2 term added to the gradient at y).

    >>> import keras
    >>> from clrbench.optimizers import ScheduleFreeSGD
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=ScheduleFreeSGD(0.5, warmup_steps=10), loss="mse")
    """

    def __init__(
        self,
        learning_rate: Any = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(momentum, bool) or not isinstance(momentum, int | float):
            raise ValueError(f"momentum must be a number, got {momentum!r}")
        if not 0 < momentum < 1:
            raise ValueError(f"Momentum must be between 0 and 1 exclusive: {momentum}")
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            name=name,
            **kwargs,
        )
        self.momentum = float(momentum)

    @property
    def _interpolation(self) -> float:
        return self.momentum

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr, c, _, _ = self._scalars(learning_rate)
        y, z, x, *slots = self._start(variable)
        g = ops.cast(gradient, y.dtype)
        if self.weight_decay != 0:
            g = g + ops.cast(self.weight_decay, y.dtype) * y
        z = z - ops.cast(lr, y.dtype) * g
        self._finish(variable, z, x, c, tuple(slots))

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"momentum": self.momentum}


class ScheduleFreeAdamW(_ScheduleFree):
    """Schedule-free AdamW, exact to ``schedulefree.AdamWScheduleFreeReference`` (same
    arguments and defaults, ``betas`` as a pair; weight decay decoupled, taken at y).

    >>> import keras
    >>> from clrbench.optimizers import ScheduleFreeAdamW
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=ScheduleFreeAdamW(0.0025, weight_decay=0.01), loss="mse")
    """

    def __init__(
        self,
        learning_rate: Any = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            name=name,
            **kwargs,
        )
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair, got {betas!r}")
        self.betas = (
            _check("betas[0]", betas[0], 0.0, 1.0),
            _check("betas[1]", betas[1], 0.0, 1.0),
        )
        self.eps = _check("eps", eps, 0.0)

    @property
    def _interpolation(self) -> float:
        return self.betas[0]

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._v = self.add_optimizer_variables(var_list, "exp_avg_sq")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr, c, _, _ = self._scalars(learning_rate)
        y, z, x, *slots = self._start(variable)
        dtype = y.dtype
        g = ops.cast(gradient, dtype)
        v_slot = self._v[self._get_variable_index(variable)]
        if self.weight_decay != 0:
            z = z - ops.cast(lr * self.weight_decay, dtype) * y
        beta2 = self.betas[1]
        v = ops.convert_to_tensor(v_slot) * ops.cast(beta2, dtype) + ops.cast(
            1.0 - beta2, dtype
        ) * (g * g)
        k = ops.cast(self.iterations, "float64")
        bias_correction2 = 1.0 - ops.power(ops.cast(beta2, "float64"), k + 1.0)
        denom = ops.sqrt(v / ops.cast(bias_correction2, dtype)) + ops.cast(self.eps, dtype)
        z = z + ops.cast(-lr, dtype) * (g / denom)
        self.assign(v_slot, v)
        self._finish(variable, z, x, c, tuple(slots))

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"betas": self.betas, "eps": self.eps}
