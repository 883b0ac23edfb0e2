"""The public value type: a validated schedule (name, parameters, granularity) and its
evaluation; names are resolved by ``registry``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clrbench.errors import ScheduleError
from clrbench.quiet import startup_silenced
from clrbench.schedules.plugins import register
from clrbench.schedules.registry import resolve
from clrbench.schedules.spec import GRANULARITIES, REGISTRY, UNSET, Spec, _count

CONFIG_KEYS = frozenset({"name", "params", "granularity", "steps_per_epoch", "source"})


def _validate_params(name: str, spec: Spec, given: Mapping[str, Any]) -> tuple:
    """Check a parameter mapping against the spec; fill defaults; return it in spec order."""
    known = [p.name for p in spec.params]
    for key in given:
        if key not in known:
            raise ScheduleError(f"{name}: unknown parameter {key!r} (valid: {', '.join(known)})")
    values = {}
    for param in spec.params:
        if param.name not in given:
            if param.default is None:
                raise ScheduleError(f"{name}: missing required parameter {param.name!r}")
            if param.default is UNSET:
                continue
        value = given.get(param.name, param.default)
        values[param.name] = param.check(f"{name}: {param.name}", value)
    for relation in spec.relations:
        relation(name, values)
    return tuple(values.items())


def _validate_granularity(name: str, granularity: Any, steps_per_epoch: Any) -> int | None:
    if granularity not in GRANULARITIES:
        raise ScheduleError(
            f"{name}: granularity must be 'iteration' or 'epoch', got {granularity!r}"
        )
    if steps_per_epoch is None:
        if granularity == "epoch":
            raise ScheduleError(f"{name}: steps_per_epoch is required for granularity='epoch'")
        return None
    return _count(f"{name}: steps_per_epoch", steps_per_epoch)


def _plain(value: Any) -> Any:
    """A parameter value as plain JSON/TOML data (nested schedules as their configs)."""
    if isinstance(value, Schedule):
        return value.to_config()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: a formula (built-in, composed, plug-in or Keras's), its parameters
    and its granularity.

    Build with ``make()``; call with a step (scalar -> float) or an array of steps (-> float64
    array). Hashable and immutable; ``params`` returns a fresh dict.
    """

    name: str
    param_items: tuple[tuple[str, Any], ...]
    granularity: str = "iteration"
    steps_per_epoch: int | None = None
    spec: Spec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = resolve(self.name)
        items = _validate_params(self.name, spec, dict(self.param_items))
        spe = _validate_granularity(self.name, self.granularity, self.steps_per_epoch)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "param_items", items)
        object.__setattr__(self, "steps_per_epoch", spe)

    def __reduce__(self) -> tuple:
        # Workers (loky, Dask) rebuild by name; a register()-ed formula travels with it.
        state = (self.name, self.param_items, self.granularity, self.steps_per_epoch)
        return _unpickle, (*state, self.spec.registration)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.param_items)

    def __call__(self, step: Any) -> Any:
        steps = np.asarray(step)
        finite = steps.dtype.kind == "f" and bool(np.all(np.isfinite(steps)))
        integral = steps.dtype.kind in "iu" or (finite and np.all(steps == np.floor(steps)))
        if not integral or np.any(steps < 0):
            raise ScheduleError(f"{self.name}: step must be an integer >= 0, got {step!r}")
        lr = np.asarray(self.evaluate(steps.astype(np.int64), np), dtype=np.float64)
        if lr.shape != steps.shape:
            try:
                lr = np.broadcast_to(lr, steps.shape).copy()
            except ValueError:
                raise ScheduleError(
                    f"{self.name}: returned shape {lr.shape} for steps of shape {steps.shape}"
                ) from None
        return float(lr) if steps.ndim == 0 else lr

    def check_rates(self, total_steps: int) -> None:
        """Raise ``ScheduleError`` unless every rate of a run of ``total_steps`` steps is finite
        and >= 0 (also when evaluating the formula raises)."""
        try:
            rates = self(np.arange(total_steps))
        except ScheduleError:
            raise
        except Exception as exc:  # a plug-in's own bug, named in one line
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ScheduleError(f"{self.name}: evaluating it raised {first}") from None
        bad = ~np.isfinite(rates) | (rates < 0)
        if bad.any():
            step = int(np.argmax(bad))
            kind = "negative" if np.isfinite(rates[step]) else "non-finite"
            raise ScheduleError(
                f"{self.name}: returns a {kind} rate ({float(rates[step])!r}) at step {step} "
                f"of the run's {total_steps:,} steps"
            )

    def to_config(self) -> dict[str, Any]:
        """Plain JSON/TOML-able values (``steps_per_epoch`` omitted when unset; a plug-in adds
        ``source``: its ``module:qualname`` and version, so a changed function changes run ids)."""
        config: dict[str, Any] = {
            "name": self.name,
            "params": {k: _plain(v) for k, v in self.param_items},
            "granularity": self.granularity,
        }
        if self.steps_per_epoch is not None:
            config["steps_per_epoch"] = self.steps_per_epoch
        if self.spec.function is not None:
            config["source"] = {"function": self.spec.function, "version": self.spec.version}
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Schedule:
        """Inverse of ``to_config``; a plug-in whose version changed since is an error."""
        if not isinstance(config, Mapping) or "name" not in config:
            raise ScheduleError(f"schedule config must be a mapping with a 'name', got {config!r}")
        extra = set(config) - CONFIG_KEYS
        if extra:
            raise ScheduleError(f"schedule config: unknown key(s) {', '.join(sorted(extra))}")
        params = config.get("params", {})
        if not isinstance(params, Mapping):
            raise ScheduleError(f"schedule config: params must be a mapping, got {params!r}")
        granularity = config.get("granularity", "iteration")
        schedule = cls(
            config["name"], tuple(params.items()), granularity, config.get("steps_per_epoch")
        )
        saved = (config.get("source") or {}).get("version")
        if saved is not None and saved != schedule.spec.version:
            raise ScheduleError(
                f"{schedule.name}: {schedule.spec.function} changed since this config was "
                f"written (version {saved}, now {schedule.spec.version})"
            )
        return schedule

    def evaluate(self, steps: Any, xp: Any) -> Any:
        """The formula at int64 ``steps`` (an array, or a tensor with ``xp`` the tensorflow
        numpy), held per epoch (integer division) for epoch granularity."""
        if self.granularity == "epoch":
            spe = self.steps_per_epoch
            steps = spe * xp.floor_divide(steps, spe)
        return self.spec.formula(steps, xp, **self.params)

    def keras(self) -> Any:
        """This schedule as a ``keras.optimizers.schedules.LearningRateSchedule`` (imports TF)."""
        with startup_silenced():  # TensorFlow, on first use: its start-up lines hidden
            from clrbench.schedules.keras_adapter import keras_schedule_class

        return keras_schedule_class(Schedule)(self)


def _unpickle(name, param_items, granularity, steps_per_epoch, registration) -> Schedule:
    if registration is not None and name not in REGISTRY:
        register(name, *registration)
    return Schedule(name, param_items, granularity, steps_per_epoch)


def make(
    name: str,
    *,
    granularity: str = "iteration",
    steps_per_epoch: int | None = None,
    **params: Any,
) -> Schedule:
    """Build a validated schedule, e.g. ``make("triangular", base_lr=1e-3, max_lr=6e-3,
    step_size=2000)``; raises ``ScheduleError`` naming the offending parameter."""
    return Schedule(name, tuple(params.items()), granularity, steps_per_epoch)
