"""Learning-rate schedules as pure functions of the optimizer step, a registry, one Keras adapter.

Every schedule is ``formula(step, xp, **params)``: ``xp`` is ``numpy`` or
``tensorflow.experimental.numpy`` and ``step`` an int64 array of 0-based optimizer steps, so the
numpy evaluation (plots, tests) and the in-graph Keras evaluation share one implementation
(``formulas``). Boundaries are integer divisions of the step; see ``formulas`` for why.

- ``make(name, granularity=..., steps_per_epoch=..., **params)`` builds a validated ``Schedule``;
  ``name`` is a built-in (``list`` shows them), a composition (``warmup``, ``join``, ``scale``),
  a ``register()``-ed formula, an installed ``clrbench.schedules`` entry point, an importable
  ``"package.module:function"``, or ``"keras:<Class>"`` for Keras's own schedules.
- ``check_exact(schedule, steps)`` asserts numpy and in-graph rates agree at every step.
- Every parameter has a role (``roles(name)``: rate, length, cycle, ...; see ``spec``), from which
  ``scale_rates``, ``tie_to_run`` (lengths written ``"run"`` or ``"run * F"``) and ``shape_notes``
  (how the shape fits a run) work for any schedule, plug-ins and compositions included.

Modules, bottom up (each imports only those below it; ``lint-imports`` checks it): ``spec``
(declarations, checks, the registry), ``formulas`` (the built-ins), ``plugins`` and
``keras_adapter`` (schedules from outside; TensorFlow), ``registry`` (name -> spec), ``core``
(``Schedule``, ``make``), ``compose``, then ``catalog``, ``by_role`` and ``exactness`` on top.

TensorFlow is imported only on first use of the Keras side (``Schedule.keras()``,
``KerasSchedule``, ``keras:`` names, ``check_exact``), so importing this package stays fast. In a
fresh process, access one of them before ``keras.models.load_model`` so the class is registered.
"""

from __future__ import annotations

from typing import Any

from clrbench.quiet import startup_silenced
from clrbench.schedules.by_role import (
    ShapeNote,
    rate_params,
    scale_rates,
    shape_notes,
    tie_to_run,
)
from clrbench.schedules.catalog import catalog, describe, names
from clrbench.schedules.compose import join, scale, warmup
from clrbench.schedules.core import Schedule, make
from clrbench.schedules.plugins import (
    AtLeastOne,
    Count,
    Cycle,
    Factor,
    Fraction,
    HalfCycle,
    Length,
    NonNegative,
    Rate,
    RateOrZero,
    Role,
    Warmup,
    declare,
    register,
    unregister,
)
from clrbench.schedules.registry import roles
from clrbench.schedules.spec import (
    ANNEALS,
    GRANULARITIES,
    ROLES,
    STEP_ROLES,
    SWEEP_MODES,
    ParamValue,
)

__all__ = [
    "ANNEALS", "GRANULARITIES", "ROLES", "STEP_ROLES", "SWEEP_MODES", "AtLeastOne", "Count",
    "Cycle", "Factor", "Fraction", "HalfCycle", "Length", "NonNegative", "ParamValue", "Rate",
    "RateOrZero", "Role", "Schedule", "ShapeNote", "Warmup", "catalog", "check_exact", "declare",
    "describe", "in_graph_rates", "join", "make", "names", "rate_params", "register", "roles",
    "scale", "scale_rates", "shape_notes", "tie_to_run", "unregister", "warmup",
]  # fmt: skip


def check_exact(schedule: Schedule, steps: int, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Assert that ``schedule`` gives the same rate inside a ``tf.function`` (from a scalar int64
    step, as the optimizer calls it) as in numpy, at each of ``steps`` steps, to float32
    precision (``atol`` is relative to the run's largest rate); ``AssertionError`` names the
    first step that differs. Call it in your tests with your run's length."""
    with startup_silenced():  # TensorFlow, on first use: its start-up lines hidden
        from clrbench.schedules.exactness import check_exact as check

    check(schedule, steps, rtol, atol)


def in_graph_rates(schedule: Any, steps: int) -> Any:
    """The float32 rates at steps ``0..steps-1`` evaluated in-graph one scalar step at a time
    (``schedule``: a ``Schedule`` or a Keras ``LearningRateSchedule``)."""
    with startup_silenced():
        from clrbench.schedules.exactness import in_graph_rates as rates

    return rates(schedule, steps)


def __getattr__(name: str) -> Any:
    if name == "KerasSchedule":
        with startup_silenced():
            from clrbench.schedules.keras_adapter import keras_schedule_class

        return keras_schedule_class(Schedule)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
