"""What the declared roles are for: scaling every rate, lengths tied to the run, and how a
schedule's shape fits the run it is given. Compositions are walked into, each nested schedule
with the steps it runs for (``Spec.spans``: a warm-up's schedule runs for what the warm-up
leaves), so all of this works for any schedule a user writes or composes.

A step-count parameter (role ``length``, ``warmup``, ``cooldown``, ``cycle``, ``half_cycle`` or
``steps``) may be written tied to the run: ``"run"`` (the steps the schedule runs for: the whole
run, or what its composition leaves it) or ``"run * F"`` (that times ``F > 0``); or tied to the
epoch: ``"epoch"`` or ``"epoch * F"`` (``F`` times the steps per epoch). Either is rounded to a
whole number of steps (Python's ``round``), at least 1. An experiment resolves them when it knows
its length, so ``--epochs``/``--train-size`` resize them; plain integers stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clrbench.errors import ScheduleError
from clrbench.schedules.core import CONFIG_KEYS, Schedule, make
from clrbench.schedules.registry import resolve
from clrbench.schedules.spec import CYCLE_FACTORS, STEP_ROLES, Spec

RUN_TIED = re.compile(
    r"^\s*(?P<unit>run|epoch)\s*(?:\*\s*(?P<fraction>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?\s*$"
)
PER_STEP_TIED = re.compile(
    r"^\s*(?P<end>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\*\s*\(\s*1\s*/\s*run\s*\)\s*$"
)
PER_STEP_DECIMALS = 6
# Keys of a nested schedule table that are not its formula's parameters.
ENTRY_KEYS = ("name", "granularity")

# (schedule name, its parameters, their roles, the steps it runs for or None) -> new parameters
Rewrite = Callable[[str, dict[str, Any], dict[str, str], int | None], dict[str, Any]]


# --- walking a schedule's parameters, into compositions ---


def _rewrite(name: str, params: Mapping[str, Any], rewrite: Rewrite, span: int | None) -> dict:
    """``params`` of schedule ``name`` with ``rewrite`` applied to its own parameters and, through
    each parameter of role ``schedule``, to every nested schedule's."""
    spec = resolve(name)
    roles = spec.roles
    own = rewrite(name, dict(params), roles, span)
    spans = _nested_spans(spec, own, span)
    for key, role in roles.items():
        if role != "schedule" or key not in own:
            continue
        value = own[key]
        items = list(value) if isinstance(value, list | tuple) else [value]
        item_spans: list[int | None] = list(spans.get(key) or [])
        if len(item_spans) != len(items):
            item_spans = [None] * len(items)
        done = [
            _rewrite_nested(item, rewrite, s) for item, s in zip(items, item_spans, strict=True)
        ]
        own[key] = done if isinstance(value, list | tuple) else done[0]
    return own


def _nested_spans(spec: Spec, params: dict, span: int | None) -> dict[str, list[int]]:
    if spec.spans is None or span is None:
        return {}
    try:
        return spec.spans(params, span)
    except (KeyError, TypeError, ValueError):  # not valid yet: make() names the problem
        return {}


def _rewrite_nested(item: Any, rewrite: Rewrite, span: int | None) -> Any:
    """A nested schedule in any of the forms a composition takes: a ``Schedule``, a config
    (``name`` + ``params``) or an entry (``name`` with the parameters beside it)."""
    if isinstance(item, Schedule):
        params = _rewrite(item.name, item.params, rewrite, span)
        return make(
            item.name,
            granularity=item.granularity,
            steps_per_epoch=item.steps_per_epoch,
            **params,
        )
    if not isinstance(item, Mapping) or "name" not in item:
        return item  # not a schedule: make() says so
    if set(item) <= CONFIG_KEYS and isinstance(item.get("params"), Mapping):
        return {**item, "params": _rewrite(item["name"], item["params"], rewrite, span)}
    fixed = {k: v for k, v in item.items() if k in ENTRY_KEYS}
    params = {k: v for k, v in item.items() if k not in ENTRY_KEYS}
    return fixed | _rewrite(item["name"], params, rewrite, span)


# --- rates ---


def scale_rates(
    name: str,
    params: Mapping[str, Any],
    factor: float,
    rounded: Callable[[float], float] = float,
) -> dict[str, Any]:
    """``params`` of schedule ``name`` with every rate (role ``rate``, nested ones included)
    multiplied by ``factor`` (then passed through ``rounded``)."""

    def scale(_: str, own: dict, roles: dict[str, str], __: int | None) -> dict:
        return {
            k: rounded(v * factor) if roles.get(k) == "rate" and _is_number(v) else v
            for k, v in own.items()
        }

    return _rewrite(name, params, scale, None)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def rate_params(name: str) -> list[str]:
    """The parameters of schedule ``name`` that are learning rates (its own, not nested ones)."""
    return [k for k, role in resolve(name).roles.items() if role == "rate"]


# --- lengths tied to the run ---


def run_length(where: str, value: str, span: int, steps_per_epoch: int | None = None) -> int:
    """``"run"``, ``"run * F"``, ``"epoch"`` or ``"epoch * F"`` as a number of steps of a
    ``span``-step run of ``steps_per_epoch`` steps per epoch."""
    match = RUN_TIED.match(value)
    if match is None:
        raise ScheduleError(
            f"{where} must be a positive integer, 'run' or 'run * F', 'epoch' or 'epoch * F' "
            f"(F > 0), got {value!r}"
        )
    fraction = float(match["fraction"] or 1.0)
    unit = match["unit"]
    if fraction <= 0:
        raise ScheduleError(f"{where}: the fraction of the {unit} must be > 0, got {value!r}")
    if unit == "epoch":
        if steps_per_epoch is None:
            raise ScheduleError(f"{where} is {value!r}, but the epoch's length is not known")
        return max(1, round(fraction * steps_per_epoch))
    if span < 1:
        raise ScheduleError(f"{where} is {value!r}, but the run leaves this schedule no steps")
    return max(1, round(fraction * span))


def per_step_factor(where: str, value: str, span: int) -> float:
    """``"F ** (1 / run)"``: the per-step factor that multiplies to ``F`` over a ``span``-step
    run, ``round(F ** (1 / span), 6)``."""
    match = PER_STEP_TIED.match(value)
    if match is None:
        raise ScheduleError(f"{where} must be a number or 'F ** (1 / run)', got {value!r}")
    end = float(match["end"])
    if not 0 < end <= 1:
        raise ScheduleError(f"{where}: F in 'F ** (1 / run)' must be in (0, 1], got {value!r}")
    if span < 1:
        raise ScheduleError(f"{where} is {value!r}, but the run leaves this schedule no steps")
    return round(end ** (1 / span), PER_STEP_DECIMALS)


def _tied(where: str, value: Any, role: str | None, span: int, spe: int | None) -> Any:
    if not isinstance(value, str):
        return value
    if role in STEP_ROLES:
        return run_length(where, value, span, spe)
    if role == "per_step":
        return per_step_factor(where, value, span)
    return value


def tie_to_run(
    name: str, params: Mapping[str, Any], run_steps: int, steps_per_epoch: int | None = None
) -> dict[str, Any]:
    """``params`` of schedule ``name`` with every length tied to the run (``"run"``,
    ``"run * F"``; a nested schedule's against the steps its composition leaves it) or to the
    epoch (``"epoch * F"``: ``F`` epochs of ``steps_per_epoch`` steps), and every per-step factor
    tied to the run (``"F ** (1 / run)"``), resolved."""

    def tie(name: str, own: dict, roles: dict[str, str], span: int | None) -> dict:
        if span is None:
            return own
        return {
            k: _tied(f"{name}: {k}", v, roles.get(k), span, steps_per_epoch) for k, v in own.items()
        }

    return _rewrite(name, params, tie, run_steps)


# --- how the shape fits the run ---


@dataclass(frozen=True)
class ShapeNote:
    """A sentence about how a schedule's shape fits the run. ``kind``: ``incomplete`` (the run
    ends before the shape does: a length longer than the run, a cycle never completed, no drop
    of a step decay), ``overlong`` (a warm-up or cooldown longer than the run: an experiment
    refuses it), ``held`` (the shape ends before the run; its final rate is held), ``mid_cycle``
    (training ends inside a later cycle)."""

    kind: str
    text: str

    @property
    def incomplete(self) -> bool:
        return self.kind in ("incomplete", "overlong")


def shape_notes(schedule: Schedule, run_steps: int, where: str = "") -> list[ShapeNote]:
    """How ``schedule``'s lengths and cycles fit a run of ``run_steps`` steps, nested schedules
    included (each against the steps its composition leaves it); ``where`` prefixes each text
    (an experiment passes the label)."""
    notes = _own_notes(schedule, run_steps, where or schedule.name)
    spans = _nested_spans(schedule.spec, schedule.params, run_steps)
    for key, role in schedule.spec.roles.items():
        value = schedule.params.get(key)
        if role != "schedule" or value is None:
            continue
        items = list(value) if isinstance(value, tuple) else [value]
        for index, (item, span) in enumerate(zip(items, spans.get(key, []), strict=False)):
            path = f"{where or schedule.name}, {key}" + (f"[{index}]" if len(items) > 1 else "")
            if span >= 1:
                notes += shape_notes(item, span, path)
    return notes


def _own_notes(schedule: Schedule, steps: int, where: str) -> list[ShapeNote]:
    params, roles = schedule.params, schedule.spec.roles
    notes = []
    for key, role in roles.items():
        value = params.get(key)
        if not isinstance(value, int):  # step counts are stored as int
            continue
        if role == "length":
            notes += _length_note(schedule, where, key, value, steps)
        elif role == "warmup" and value >= steps:
            text = (
                f"{where}: {key} = {value:,} steps of warm-up but the run has {steps:,}; "
                "training ends before the warm-up does"
            )
            notes.append(ShapeNote("overlong", text))
        elif role == "cooldown" and value > steps:
            text = (
                f"{where}: {key} = {value:,} steps of cooldown but the run has {steps:,}; "
                "the cooldown cannot fit in the run"
            )
            notes.append(ShapeNote("overlong", text))
        elif role == "interval" and value >= steps:
            text = (
                f"{where}: {key} = {value:,} but the run has {steps:,} steps; "
                "training ends before the first drop"
            )
            notes.append(ShapeNote("incomplete", text))
    growing = any(roles[k] == "growth" and params.get(k, 1) != 1 for k in roles)
    for key, role in roles.items():
        if role in CYCLE_FACTORS and isinstance(params.get(key), int) and not growing:
            notes += _cycle_note(where, params[key] * CYCLE_FACTORS[role], steps)
    return notes


def _length_note(
    schedule: Schedule, where: str, key: str, length: int, steps: int
) -> list[ShapeNote]:
    if length == steps:
        return []
    if length > steps:
        text = (
            f"{where}: {key} = {length:,} but the run has {steps:,} steps; "
            f"training stops {length - steps:,} steps before the schedule ends"
        )
        return [ShapeNote("incomplete", text)]
    text = (
        f"{where}: {key} = {length:,} but the run has {steps:,} steps; "
        f"the last {steps - length:,} steps hold the final rate {schedule(length - 1):.3g}"
    )
    return [ShapeNote("held", text)]


def _cycle_note(where: str, cycle: int, steps: int) -> list[ShapeNote]:
    left = steps % cycle
    if left == 0:
        return []
    text = (
        f"{where}: training ends {left} steps into cycle {steps // cycle + 1} "
        f"({steps:,} steps, cycles of {cycle:,}), not at a cycle boundary"
    )
    return [ShapeNote("incomplete" if steps < cycle else "mid_cycle", text)]
