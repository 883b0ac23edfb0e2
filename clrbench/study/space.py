"""Search spaces of schedule families, and their quasi-random (Sobol) trials.

A family is one schedule (``name``, ``granularity``) whose parameters are *knobs*, written in the
study TOML under ``[[family]]`` / ``[family.space]``::

    lr        = { log = [0.003, 1.0] }                    # log-uniform rate
    drop      = { uniform = [0.1, 0.8] }                  # uniform
    every_steps = { int = [1, 10], unit = "epochs" }      # integer count of epochs -> steps
    step_size = { uniform = [0.5, 5.0], unit = "epochs" } # a length in epochs -> steps
    base_lr   = { log = [0.05, 0.5], times = "max_lr" }   # a fraction of another knob
    decay     = { log = [0.01, 1.0], unit = "fraction_at_end" }  # per-step factor reaching it
    total_steps = { value = 25, unit = "epochs" }         # fixed (a plain number works too)
    warmup_steps = { uniform = [0.02, 0.1], unit = "run" } # a share of the run -> steps
    cooldown  = "1-sqrt"                                  # a fixed choice (a string)

Units: ``steps`` (the default; the value as is), ``epochs`` (times the steps per epoch, rounded
to a whole number of steps, at least 1), ``run`` (times the run's ``T`` steps, rounded, at least
1), ``fraction_at_end`` (the per-step factor ``v^(1/T)`` that multiplies to ``v`` over the run's
``T`` steps). ``times`` multiplies by another knob's
value (resolved first). Rates are rounded to 4 significant digits, so tables stay legible.

Trials are the points of a scrambled Sobol sequence (``scipy.stats.qmc.Sobol``) in the unit cube
of the family's ranged knobs, seeded from ``(sampling_seed, family label)``: the same on every
machine and for any ``--jobs``, and a larger budget extends a smaller one (its first trials are
the same points).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

from clrbench import schedules
from clrbench.config.optimizers import DECAY_ROLE, check_optimizer, weight_decay_range
from clrbench.errors import ClrbenchError, ConfigError

KINDS = ("log", "uniform", "int")
UNITS = ("steps", "epochs", "run", "fraction_at_end")
LENGTH_UNITS = ("epochs", "run")  # units that turn a value into a count of steps
SIGNIFICANT = 4


@dataclass(frozen=True)
class Knob:
    """One parameter of a family: a fixed value or a range, with its unit."""

    name: str
    kind: str | None  # None: fixed
    low: float
    high: float
    unit: str = "steps"
    times: str | None = None
    choice: str | None = None  # a fixed string value (a shape's name), not a number

    @property
    def ranged(self) -> bool:
        return self.kind is not None

    def value(self, u: float) -> float:
        """The knob's raw value at the unit-cube coordinate ``u`` in [0, 1)."""
        if self.kind is None:
            return self.low
        if self.kind == "log":
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        if self.kind == "int":
            return float(min(self.high, self.low + math.floor(u * (self.high - self.low + 1))))
        return self.low + u * (self.high - self.low)

    def to_toml(self) -> Any:
        if self.choice is not None:
            return self.choice
        if self.kind is None and self.unit == "steps" and self.times is None:
            return self.low
        entry: dict[str, Any] = {"value": self.low} if self.kind is None else {}
        if self.kind is not None:
            bounds = (
                [int(self.low), int(self.high)] if self.kind == "int" else [self.low, self.high]
            )
            entry[self.kind] = bounds
        if self.unit != "steps":
            entry["unit"] = self.unit
        if self.times is not None:
            entry["times"] = self.times
        return entry


def parse_knob(family: str, name: str, raw: Any) -> Knob:
    """A knob from its TOML value (ConfigError naming the family and knob)."""
    where = f"family {family!r}, {name}"
    if isinstance(raw, bool):
        raise ConfigError(f"{where}: expected a number or a table, got {raw!r}")
    if isinstance(raw, int | float):
        return Knob(name, None, float(raw), float(raw))
    if isinstance(raw, str):
        return Knob(name, None, 0.0, 0.0, choice=raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a number or a table, got {raw!r}")
    raw = dict(raw)
    unit, times = raw.pop("unit", "steps"), raw.pop("times", None)
    if unit not in UNITS:
        raise ConfigError(f"{where}: unit must be one of {', '.join(UNITS)}, got {unit!r}")
    kinds = [k for k in (*KINDS, "value") if k in raw]
    extra = set(raw) - {*KINDS, "value"}
    if len(kinds) != 1 or extra:
        raise ConfigError(f"{where}: give exactly one of log, uniform, int, value")
    kind = kinds[0]
    if kind == "value":
        return Knob(
            name, None, _number(where, raw["value"]), _number(where, raw["value"]), unit, times
        )
    bounds = raw[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"{where}: {kind} needs [low, high]")
    low, high = (_number(where, b) for b in bounds)
    if not low <= high or (kind == "log" and low <= 0):
        raise ConfigError(
            f"{where}: need {'0 < ' if kind == 'log' else ''}low <= high, got {bounds}"
        )
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ConfigError(f"{where}: int bounds must be whole numbers, got {bounds}")
    return Knob(name, kind, low, high, unit, times)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Family:
    """A schedule family and its search space."""

    label: str
    name: str
    granularity: str
    knobs: tuple[Knob, ...]
    optimizer: str | None = None  # the family's own optimizer (None: the study's)

    @property
    def ranged(self) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.ranged)

    def resolve(
        self, point: Sequence[float] | np.ndarray, steps_per_epoch: int, total_steps: int
    ) -> dict:
        """Schedule parameters at a point of the unit cube (one coordinate per ranged knob)."""
        raw = dict(zip((k.name for k in self.ranged), point, strict=True))
        rates = set(rate_params({k.name: None for k in self.knobs}, self.name))
        values: dict[str, float] = {}
        for knob in sorted(self.knobs, key=lambda k: k.times is not None):
            value = knob.value(raw.get(knob.name, 0.0))
            if knob.times is not None:
                value *= values[knob.times]
            values[knob.name] = value
        return {
            k.name: k.choice
            if k.choice is not None
            else _in_unit(values[k.name], k, steps_per_epoch, total_steps, k.name in rates)
            for k in self.knobs
        }

    def to_toml(self) -> dict[str, Any]:
        entry = {"label": self.label, "name": self.name, "granularity": self.granularity}
        if self.optimizer is not None:
            entry["optimizer"] = self.optimizer
        return entry | {"space": {k.name: k.to_toml() for k in self.knobs}}


def _in_unit(
    value: float, knob: Knob, steps_per_epoch: int, total_steps: int, rate: bool
) -> float | int:
    if knob.unit == "epochs":
        return max(1, round(value * steps_per_epoch))
    if knob.unit == "run":
        return max(1, round(value * total_steps))
    if knob.unit == "fraction_at_end":
        return float(f"{value ** (1 / total_steps):.9g}")
    if knob.kind == "int" or (knob.kind is None and value == int(value) and knob.times is None):
        return float(value) if rate else int(value)
    return float(f"{value:.{SIGNIFICANT}g}")


def parse_family(raw: Any, index: int) -> Family:
    """A family from its ``[[family]]`` table."""
    if not isinstance(raw, dict) or "name" not in raw or "label" not in raw:
        raise ConfigError(f"[[family]] #{index + 1}: needs a 'label' and a 'name'")
    extra = set(raw) - {"label", "name", "granularity", "space", "optimizer"}
    if extra:
        raise ConfigError(f"family {raw['label']!r}: unknown key(s) {', '.join(sorted(extra))}")
    space = raw.get("space", {})
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"family {raw['label']!r}: needs a [family.space] of its knobs")
    knobs = tuple(parse_knob(raw["label"], name, value) for name, value in space.items())
    optimizer = raw.get("optimizer")
    if optimizer is not None:
        if not isinstance(optimizer, str):
            raise ConfigError(f"family {raw['label']!r}: optimizer must be a string")
        check_optimizer(optimizer)
    family = Family(
        str(raw["label"]), str(raw["name"]), raw.get("granularity", "iteration"), knobs, optimizer
    )
    names = {k.name for k in knobs}
    for knob in knobs:
        target = next((k for k in knobs if k.name == knob.times), None)
        if knob.times is not None and (target is None or target.times is not None):
            raise ConfigError(
                f"family {family.label!r}, {knob.name}: times = {knob.times!r} must name "
                f"another knob of the family without 'times' (knobs: {', '.join(sorted(names))})"
            )
    if not family.ranged:
        raise ConfigError(f"family {family.label!r}: no knob has a range, nothing to tune")
    _check_units_fit_roles(family)
    return family


def _check_units_fit_roles(family: Family) -> None:
    """``unit = "epochs"`` or ``"run"`` turns a value into steps: only for a parameter that
    counts iterations (its declared role), or a rate would silently be multiplied by a length."""
    try:
        declared = schedules.roles(family.name)
    except ClrbenchError:  # an unknown schedule is named when the trials are built
        return
    for knob in family.knobs:
        role = declared.get(knob.name)
        if knob.choice is not None and role not in (None, "shape"):
            raise ConfigError(
                f"family {family.label!r}, {knob.name}: expected a number or a table, got "
                f"{knob.choice!r} (a string is the choice of a shape parameter; {knob.name} "
                f"is a {role} parameter of {family.name})"
            )
        if knob.unit in LENGTH_UNITS and role is not None and role not in schedules.STEP_ROLES:
            raise ConfigError(
                f"family {family.label!r}, {knob.name}: unit = {knob.unit!r} is for counts of "
                f"iterations, and {knob.name} is a {role} parameter of {family.name}"
            )


def decay_knob(optimizer: str) -> Knob | None:
    """The weight-decay knob of a family of ``optimizer``, from its declared log-uniform range
    (``clrbench.config.optimizers``); None for an optimizer without weight decay. Written
    ``weight_decay = { log = [low, high] }`` in a family's space."""
    bounds = weight_decay_range(optimizer)
    return None if bounds is None else Knob(DECAY_ROLE, "log", *bounds)


def family_seed(sampling_seed: int, label: str) -> np.random.Generator:
    """The generator scrambling one family's Sobol sequence: from the study's sampling seed and
    the family's label (so adding a family changes no other family's trials)."""
    return np.random.default_rng([sampling_seed, zlib.crc32(label.encode())])


def sobol_points(dimensions: int, count: int, sampling_seed: int, label: str) -> np.ndarray:
    """``count`` points of the family's scrambled Sobol sequence, shape (count, dimensions)."""
    sampler = qmc.Sobol(dimensions, scramble=True, seed=family_seed(sampling_seed, label))
    with warnings.catch_warnings():
        # Sobol's balance is exact only for powers of 2; other budgets are still low-discrepancy.
        warnings.filterwarnings("ignore", "The balance properties", UserWarning)
        return sampler.random(count)


def rate_params(params: dict[str, Any], name: str | None = None) -> list[str]:
    """The learning-rate parameters among ``params``: those of role ``rate`` in schedule
    ``name``'s declaration; without a name (a trial's parameters alone), those some registered
    schedule declares a rate."""
    if name is None:
        known = {k for n in schedules.names() for k in _rates_of(n)}
    else:
        known = set(_rates_of(name))
    return [k for k in params if k in known]


def _rates_of(name: str) -> list[str]:
    try:
        return schedules.rate_params(name)
    except ClrbenchError:  # a plug-in that does not load here has no known rates
        return []


def scale_rates(name: str, params: dict[str, Any], factor: float) -> dict[str, Any]:
    """The parameters of schedule ``name`` with every learning rate (role ``rate``, nested
    schedules' too) multiplied by ``factor``."""
    return schedules.scale_rates(
        name, params, factor, rounded=lambda v: float(f"{v:.{SIGNIFICANT + 2}g}")
    )
