"""Composition, optax-style: schedules are functions of the step, so compound schedules are
ordinary registered formulas whose parameters are other schedules (no class per combination).

``warmup``, ``join`` and ``scale`` are registered like the built-ins, so they validate, serialise,
run in the graph and name themselves in run ids the same way; nested schedules may be any
schedule (built-in, plug-in, ``keras:<Class>``, another composition). Every boundary is an integer
comparison of the int64 step, and a later part counts from its own start: ``step - boundary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clrbench.errors import ScheduleError
from clrbench.schedules.core import CONFIG_KEYS, Schedule, make
from clrbench.schedules.formulas import _real
from clrbench.schedules.spec import Param, _count, _rate, _rate_or_zero, builtin


def _nested(where: str, value: Any) -> Schedule:
    """A schedule given as a ``Schedule``, a config (``name`` + ``params``) or an entry (a TOML
    table: ``name`` with the parameters beside it)."""
    if isinstance(value, Schedule):
        schedule = value
    elif isinstance(value, Mapping) and "name" in value:
        try:
            if set(value) <= CONFIG_KEYS and isinstance(value.get("params"), Mapping):
                schedule = Schedule.from_config(value)
            else:
                entry = {k: v for k, v in value.items() if k not in ("name", "granularity")}
                granularity = value.get("granularity", "iteration")
                schedule = make(value["name"], granularity=granularity, **entry)
        except ScheduleError as exc:
            raise ScheduleError(f"{where}: {exc}") from None
    else:
        raise ScheduleError(f"{where} must be a schedule (a table with a 'name'), got {value!r}")
    if schedule.granularity != "iteration":
        raise ScheduleError(
            f"{where}: a nested schedule is per iteration; set granularity on the outer one"
        )
    return schedule


def _schedule_list(where: str, value: Any) -> tuple[Schedule, ...]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise ScheduleError(f"{where} must be a list of at least two schedules, got {value!r}")
    return tuple(_nested(f"{where}[{i}]", item) for i, item in enumerate(value))


def _boundaries(where: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ScheduleError(f"{where} must be a non-empty list of steps, got {value!r}")
    steps = tuple(_count(where, v) for v in value)
    if any(b >= a for b, a in zip(steps, steps[1:], strict=False)):
        raise ScheduleError(f"{where} must be strictly increasing, got {value!r}")
    return steps


def _one_boundary_between_each(name: str, p: dict) -> None:
    if len(p["boundaries"]) != len(p["schedules"]) - 1:
        raise ScheduleError(
            f"{name}: boundaries needs one step between each pair of schedules "
            f"({len(p['schedules']) - 1}), got {len(p['boundaries'])}"
        )


# The steps each nested schedule runs for, of the ``span`` steps the composition runs for.


def _after_warmup(p: dict, span: int) -> dict[str, list[int]]:
    return {"schedule": [span - p["steps"]]}


def _between_boundaries(p: dict, span: int) -> dict[str, list[int]]:
    starts = [0, *p["boundaries"]]
    ends = [*p["boundaries"], span]
    return {"schedules": [end - start for start, end in zip(starts, ends, strict=True)]}


def _whole(p: dict, span: int) -> dict[str, list[int]]:
    return {"schedule": [span]}


_INNER = "the schedule after the warm-up, counting from its own step 0"


@builtin(
    "warmup",
    Param("schedule", _nested, _INNER, role="schedule"),
    Param("steps", _count, "iterations of linear warm-up", role="warmup"),
    Param("start_lr", _rate_or_zero, "rate at step 0", 0.0, role="rate"),
    origin="composition",
    spans=_after_warmup,
)
def _warmup(step, xp, schedule, steps, start_lr):
    """Linear warm-up from start_lr to the schedule's first rate over ``steps``, then the schedule.

    ``lr = start_lr + (s(0) - start_lr) * step / steps`` for ``step < steps``, then
    ``s(step - steps)``: the schedule starts at its own step 0 when the warm-up ends (optax
    ``warmup_cosine_decay_schedule``, ``join_schedules``), so its cycles keep their own phase.
    """
    peak = schedule.evaluate(xp.zeros_like(step), xp)
    ramp = start_lr + (peak - start_lr) * (_real(step, xp) / steps)
    after = schedule.evaluate(xp.maximum(step - steps, 0), xp)
    return xp.where(step < steps, ramp, after)


@builtin(
    "join",
    Param(
        "schedules", _schedule_list, "schedules, each counting from its own step 0", role="schedule"
    ),
    Param("boundaries", _boundaries, "steps where the next schedule takes over", role="steps"),
    relations=(_one_boundary_between_each,),
    origin="composition",
    spans=_between_boundaries,
)
def _join(step, xp, schedules, boundaries):
    """Schedules joined at step boundaries, each counting from its own start.

    ``schedules[i](step - boundaries[i - 1])`` from step ``boundaries[i - 1]`` on (optax
    ``join_schedules``).
    """
    rate = schedules[0].evaluate(step, xp)
    for boundary, schedule in zip(boundaries, schedules[1:], strict=True):
        later = schedule.evaluate(xp.maximum(step - boundary, 0), xp)
        rate = xp.where(step >= boundary, later, rate)
    return rate


@builtin(
    "scale",
    Param("schedule", _nested, "the schedule to scale", role="schedule"),
    # shape, not rate: scaling the composition scales the nested schedule's rates already
    Param("factor", _rate, "multiplier of every rate, > 0"),
    origin="composition",
    spans=_whole,
)
def _scale(step, xp, schedule, factor):
    """A schedule multiplied by a constant: ``factor * s(step)``."""
    return factor * schedule.evaluate(step, xp)


def warmup(schedule: Schedule | Mapping, steps: int, start_lr: float = 0.0,
           **options: Any) -> Schedule:  # fmt: skip
    """``schedule`` after ``steps`` of linear warm-up from ``start_lr`` (options: granularity,
    steps_per_epoch)."""
    return make("warmup", schedule=schedule, steps=steps, start_lr=start_lr, **options)


def join(schedules: list, boundaries: list[int], **options: Any) -> Schedule:
    """``schedules`` joined at ``boundaries`` (one fewer than schedules), each from its own 0."""
    return make("join", schedules=list(schedules), boundaries=list(boundaries), **options)


def scale(schedule: Schedule | Mapping, factor: float, **options: Any) -> Schedule:
    """``factor`` times ``schedule``."""
    return make("scale", schedule=schedule, factor=factor, **options)
