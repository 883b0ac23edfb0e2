"""AdamW and NAdamW as the AlgoPerf baselines run them, as Keras 3 optimizers.

``NAdamW`` is the NAdamW of MLCommons AlgoPerf's baseline (``mlcommons/algorithmic-efficiency``,
``reference_algorithms/qualification_baselines/external_tuning/pytorch_nadamw_full_budget.py``,
``class NAdamW``), itself PyTorch 1.12's ``AdamW`` with a Nesterov first moment; ``AdamW`` is the
same update without that line (PyTorch's ``torch.optim.AdamW``, amsgrad off: the AlgoPerf AdamW
baseline's optimizer). Per step t (1-based), rate lr (the schedule's, at this step)::

    p = p · (1 − lr · wd)                                  decoupled weight decay
    m = β1 · m + (1 − β1) · g;   v = β2 · v + (1 − β2) · g²
    NAdamW only:  m̂ = β1 · m + (1 − β1) · g     (AdamW: m̂ = m)
    p = p − lr / (1 − β1^t) · m̂ / (√v / √(1 − β2^t) + eps)

Keras's own ``AdamW`` differs in where eps enters (``√v + eps`` with the bias correction folded
into the rate) and in its decay (``p − p · wd · lr``), so it is not used: the two optimizers
here differ in the Nesterov line only. The bias corrections are float64 scalars, as the
reference computes them in Python.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


class AdamW(keras.optimizers.Optimizer):
    """PyTorch's AdamW (decoupled weight decay) with PyTorch's defaults.

    >>> import keras
    >>> from clrbench.optimizers import AdamW
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=AdamW(1e-3, weight_decay=0.01), loss="mse")
    """

    nesterov = False

    def __init__(
        self,
        learning_rate: Any = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 1e-2,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        for key, value, high in (
            ("beta_1", beta_1, 1.0),
            ("beta_2", beta_2, 1.0),
            ("epsilon", epsilon, None),
            ("weight_decay", weight_decay, None),
        ):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or value < 0 or (high is not None and value >= high):
                raise ValueError(f"{key} must be in [0, {high or 'inf'}), got {value!r}")
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._m, self._v = self.add_optimizer_variables(var_list, ["exp_avg", "exp_avg_sq"])

    def _apply_weight_decay(self, variables: list) -> None:
        """Nothing: the update decays ``p · (1 − lr · wd)`` first, as the reference does."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        m_slot, v_slot = self._m[index], self._v[index]
        p = ops.convert_to_tensor(variable)  # read now, before any assignment
        dtype = p.dtype
        g = ops.cast(gradient, dtype)
        lr = ops.cast(learning_rate, "float64")
        t = ops.cast(self.iterations + 1, "float64")
        b1, b2 = self.beta_1, self.beta_2
        p = p * ops.cast(1.0 - lr * self.weight_decay, dtype)
        m = ops.convert_to_tensor(m_slot) * ops.cast(b1, dtype) + ops.cast(1.0 - b1, dtype) * g
        v = ops.convert_to_tensor(v_slot) * ops.cast(b2, dtype) + ops.cast(1.0 - b2, dtype) * (
            g * g
        )
        step = m * ops.cast(b1, dtype) + ops.cast(1.0 - b1, dtype) * g if self.nesterov else m
        bias_correction1 = 1.0 - ops.power(ops.cast(b1, "float64"), t)
        bias_correction2_sqrt = ops.sqrt(1.0 - ops.power(ops.cast(b2, "float64"), t))
        denom = ops.sqrt(v) / ops.cast(bias_correction2_sqrt, dtype) + ops.cast(self.epsilon, dtype)
        p = p + ops.cast(-lr / bias_correction1, dtype) * (step / denom)
        self.assign(m_slot, m)
        self.assign(v_slot, v)
        self.assign(variable, p)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class NAdamW(AdamW):
    """AlgoPerf's baseline NAdamW: AdamW with the Nesterov first moment
    ``β1 · m + (1 − β1) · g`` in the step (arXiv 1910.05446, Table 1).

    >>> import keras
    >>> from clrbench.optimizers import NAdamW
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=NAdamW(1e-3, weight_decay=0.01), loss="mse")
    """

    nesterov = True
