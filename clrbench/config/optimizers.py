"""The optimizers a run may name, as plain data: the Keras class, its fixed arguments, and what
it accepts (weight decay, a schedule).

Weight decay is a declared optimizer parameter (role ``weight_decay``) with a log-uniform search
range per optimizer, so a study's space can be built from it (:func:`weight_decay_range`):

- ``adamw``, ``nadamw``, ``schedulefree-adamw``: decoupled, ``p · (1 − lr · wd)`` (z for
  schedule-free); default 0.01 for adamw/nadamw (``torch.optim.AdamW``'s and AlgoPerf's NAdamW
  class's default), 0 for schedule-free (the reference's); range [5e-3, 1] — AlgoPerf's AdamW
  baseline's search space (``reference_algorithms/paper_baselines/adamw/tuning_search_space.json``).
- ``schedulefree-sgd``: an L2 term at y in the gradient (the reference's); default 0, range
  [1e-5, 1e-2], around SGD's customary 5e-4.

Schedule-free optimizers take a constant rate and their own warmup (``warmup_steps``): any other
schedule is refused (``clrbench.config.runs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from clrbench.errors import ConfigError
from clrbench.text import did_you_mean

MOMENTUM = 0.9
DECAY_ROLE = "weight_decay"


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer a run may name."""

    keras_class: str  # in keras.optimizers, or clrbench.optimizers when ``own``
    kwargs: dict[str, Any] = field(default_factory=dict)
    own: bool = False  # clrbench.optimizers' class (AlgoPerf's / the schedule-free reference's)
    weight_decay: float | None = None  # its default weight decay; None: it takes none
    decay_range: tuple[float, float] | None = None  # the log-uniform search range of the decay
    schedule_free: bool = False


DECOUPLED_RANGE = (5e-3, 1.0)
L2_RANGE = (1e-5, 1e-2)

SPECS: dict[str, OptimizerSpec] = {
    "sgd-momentum": OptimizerSpec("SGD", {"momentum": MOMENTUM}),
    "sgd": OptimizerSpec("SGD"),
    "rmsprop": OptimizerSpec("RMSprop"),
    "adam": OptimizerSpec("Adam"),
    "adamw": OptimizerSpec("AdamW", own=True, weight_decay=1e-2, decay_range=DECOUPLED_RANGE),
    "nadamw": OptimizerSpec("NAdamW", own=True, weight_decay=1e-2, decay_range=DECOUPLED_RANGE),
    "schedulefree-sgd": OptimizerSpec(
        "ScheduleFreeSGD",
        {"momentum": MOMENTUM},
        own=True,
        weight_decay=0.0,
        decay_range=L2_RANGE,
        schedule_free=True,
    ),
    "schedulefree-adamw": OptimizerSpec(
        "ScheduleFreeAdamW",
        own=True,
        weight_decay=0.0,
        decay_range=DECOUPLED_RANGE,
        schedule_free=True,
    ),
}
# The optimizers the suite trained before AdamW and schedule-free (their run ids carry no
# weight decay; the stacked trainer implements these only).
CLASSIC = ("sgd-momentum", "sgd", "rmsprop", "adam")

# name -> (Keras class name, extra constructor arguments): the classic optimizers' table
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    name: (spec.keras_class, spec.kwargs) for name, spec in SPECS.items()
}


def check_optimizer(name: str) -> str:
    """Return `name` if it is a known optimizer, else raise ConfigError."""
    if name not in SPECS:
        raise ConfigError(
            f"unknown optimizer {name!r}{did_you_mean(str(name), list(SPECS))}; "
            f"choose one of {', '.join(SPECS)}"
        )
    return name


def spec(name: str) -> OptimizerSpec:
    return SPECS[check_optimizer(name)]


def check_weight_decay(optimizer: str, value: Any) -> float | None:
    """The weight decay a run of ``optimizer`` trains with: ``value`` checked (a finite
    number >= 0, for an optimizer that takes one), or the optimizer's default."""
    default = spec(optimizer).weight_decay
    if value is None:
        return default
    if default is None:
        takes = ", ".join(name for name, s in SPECS.items() if s.weight_decay is not None)
        raise ConfigError(
            f"optimizer {optimizer!r} takes no weight_decay (these do: {takes}), got {value!r}"
        )
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {value!r}")
    return float(value)


def weight_decay_range(optimizer: str) -> tuple[float, float] | None:
    """The log-uniform search range of ``optimizer``'s weight decay (None: it takes none)."""
    return spec(optimizer).decay_range


def is_schedule_free(optimizer: str) -> bool:
    return spec(optimizer).schedule_free
