"""The bottom of ``schedules``: what a formula declares (its parameters, each with a check and a
role), the parameter checks, and the registry the built-ins and plug-ins are entered in.

A parameter's *role* says what clrbench may do with it beyond passing it to the formula, so that
scaling, length notes, run-tied lengths and study search spaces come from the declaration (a
plug-in's too) rather than from tables of names:

- ``rate``: a learning rate; the study's rate multiplier and ``scale_rates`` multiply all of them.
- ``length``: iterations the schedule's shape runs for, its final rate held after (one-cycle's
  ``total_steps``); noted when it differs from the run.
- ``warmup``: iterations of a leading phase the rest of the schedule follows; noted when the run
  ends inside it.
- ``cycle`` / ``half_cycle``: iterations per cycle / half cycle; noted when the run ends mid-cycle.
- ``growth``: the factor a cycle grows by after each restart (cycles are then not one length).
- ``cooldown``: iterations of a trailing phase down to the final rate (WSD's ``decay_steps``);
  noted when it is longer than the run.
- ``interval``: iterations between the drops of a step decay; noted when the run has no drop.
- ``steps``: any other count of iterations (a decay's time constant, a boundary).
- ``per_step``: a factor applied every iteration (an amplitude's decay); may be written
  ``"F ** (1 / run)"``, the factor that multiplies to ``F`` over the run.
- ``shape``: dimensionless (a factor, a fraction, a choice).
- ``schedule``: a nested schedule (compositions): its own parameters carry their own roles.

The step-count roles (``length``, ``warmup``, ``cooldown``, ``cycle``, ``half_cycle``,
``interval``, ``steps``) may be written tied to the run (``"run"``, ``"run * 0.08"``) or to the
epoch (``"epoch * 2.5"``): see ``by_role``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from clrbench.errors import ScheduleError

GRANULARITIES = ("iteration", "epoch")
ANNEALS = ("cos", "linear")
SWEEP_MODES = ("exp", "linear")
COOLDOWNS = ("linear", "cosine", "1-sqrt")
ParamValue = float | int | str

ROLES = (
    "rate", "length", "warmup", "cooldown", "cycle", "half_cycle", "growth", "interval", "steps",
    "per_step", "shape", "schedule",
)  # fmt: skip
STEP_ROLES = ("length", "warmup", "cooldown", "cycle", "half_cycle", "interval", "steps")
# Steps in one cycle per unit of a cycle-role parameter.
CYCLE_FACTORS = {"cycle": 1, "half_cycle": 2}


class _Unset:
    """Default of an optional parameter that is simply left out when not given."""

    def __repr__(self) -> str:
        return "unset"


UNSET = _Unset()


def check_role(where: str, role: Any) -> str:
    if role not in ROLES:
        raise ScheduleError(f"{where}: role must be one of {', '.join(ROLES)}, got {role!r}")
    return str(role)


# --- parameter checks: each takes ("<schedule>: <param>", value) and returns the stored value ---


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ScheduleError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ScheduleError(f"{where} must be finite, got {value!r}")
    return float(value)


def _bounded(low: float, high: float, low_open: bool, high_open: bool, text: str) -> Callable:
    def check(where: str, value: Any) -> float:
        x = _number(where, value)
        if x < low or x > high or (low_open and x == low) or (high_open and x == high):
            raise ScheduleError(f"{where} must be {text}, got {value!r}")
        return x

    return check


_rate = _bounded(0.0, math.inf, True, True, "> 0")
_rate_or_zero = _bounded(0.0, math.inf, False, True, ">= 0")
_factor = _bounded(0.0, 1.0, True, False, "in (0, 1]")
_fraction = _bounded(0.0, 1.0, True, True, "in (0, 1)")
_at_least_one = _bounded(1.0, math.inf, False, True, ">= 1")


def _count(where: str, value: Any) -> int:
    """A positive integer (an integral float is accepted and stored as int)."""
    x = _steps(where, value, "a positive integer")
    if x < 1:
        raise ScheduleError(f"{where} must be a positive integer, got {value!r}")
    return x


def _count_or_zero(where: str, value: Any) -> int:
    """An integer >= 0 of iterations (a phase that may be left out)."""
    x = _steps(where, value, "an integer >= 0")
    if x < 0:
        raise ScheduleError(f"{where} must be an integer >= 0, got {value!r}")
    return x


def _steps(where: str, value: Any, text: str) -> int:
    if isinstance(value, str) and value.strip().startswith(("run", "epoch")):
        raise ScheduleError(
            f"{where} is {value!r}, a length tied to the run or the epoch: it is resolved in an "
            "experiment (or by clrbench.schedules.tie_to_run), not by make()"
        )
    x = _number(where, value)
    if x != math.floor(x):
        raise ScheduleError(f"{where} must be {text}, got {value!r}")
    return int(x)


def _anneal(where: str, value: Any) -> str:
    if value not in ANNEALS:
        raise ScheduleError(f"{where} must be one of {', '.join(ANNEALS)}, got {value!r}")
    return str(value)


def _cooldown(where: str, value: Any) -> str:
    if value not in COOLDOWNS:
        raise ScheduleError(f"{where} must be one of {', '.join(COOLDOWNS)}, got {value!r}")
    return str(value)


def _sweep_mode(where: str, value: Any) -> str:
    if value not in SWEEP_MODES:
        raise ScheduleError(f"{where} must be one of {', '.join(SWEEP_MODES)}, got {value!r}")
    return str(value)


# --- the declaration ---


@dataclass(frozen=True)
class Param:
    name: str
    check: Callable[[str, Any], Any]  # -> ParamValue; a composition's: a Schedule, or several
    meaning: str
    default: Any = None  # a ParamValue or UNSET (no value, Keras's None); None: required
    role: str = "shape"

    def __post_init__(self) -> None:
        check_role(f"parameter {self.name!r}", self.role)


# A composition's spans: (its own parameters, the steps it runs for) -> for each parameter
# holding nested schedules, the steps each of them runs for (a warm-up's schedule: the rest).
Spans = Callable[[dict[str, Any], int], dict[str, list[int]]]


@dataclass(frozen=True)
class Spec:
    formula: Callable[..., Any]
    params: tuple[Param, ...]
    relations: tuple[Callable[[str, dict], None], ...]
    origin: str = "built-in"
    function: str | None = None  # plug-ins: "module:qualname", part of the run id
    version: str | None = None  # plug-ins: declared, or a hash of the function's source
    summary: str | None = None
    registration: tuple | None = None  # register()-ed: (formula, version, check, roles)
    spans: Spans | None = None  # compositions only

    @property
    def doc(self) -> str:
        text = self.summary or (getattr(self.formula, "__doc__", None) or "").strip()
        return text.splitlines()[0] if text else ""

    @property
    def roles(self) -> dict[str, str]:
        return {p.name: p.role for p in self.params}


REGISTRY: dict[str, Spec] = {}


def builtin(
    name: str,
    *params: Param,
    relations: tuple = (),
    origin: str = "built-in",
    spans: Spans | None = None,
) -> Callable:
    """Register a formula of this package (a built-in or a composition) under ``name``."""

    def decorate(formula: Callable) -> Callable:
        arguments = list(inspect.signature(formula).parameters)[2:]
        assert arguments == [p.name for p in params], f"{name}: formula/parameter mismatch"
        REGISTRY[name] = Spec(formula, params, relations, origin, spans=spans)
        return formula

    return decorate
