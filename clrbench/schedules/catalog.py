"""What schedules there are: names, parameters, one-line descriptions, and where each comes from."""

from __future__ import annotations

from typing import Any

from clrbench.errors import ScheduleError
from clrbench.schedules.registry import names, resolve
from clrbench.schedules.spec import UNSET, Spec

__all__ = ["catalog", "describe", "names"]

KERAS_ROW: tuple[str, list[str], str, str] = (
    "keras:<Class>",
    [],
    "Keras's own schedule by class name (CosineDecay, ExponentialDecay, ...), its constructor "
    "arguments as parameters",
    "Keras (keras.optimizers.schedules)",
)


def _spec(name: str) -> Spec | str:
    try:
        return resolve(name)
    except ScheduleError as exc:  # a broken plug-in is listed with its error, not fatal
        return str(exc)


def _params(spec: Spec) -> list[tuple[str, Any, str]]:
    return [(p.name, None if p.default is UNSET else p.default, p.meaning) for p in spec.params]


def describe() -> list[tuple[str, list[tuple[str, Any, str]], str]]:
    """``(name, [(param, default or None if required, meaning)], doc)`` per name, sorted."""
    return [(name, params, doc) for name, params, doc, _ in catalog()]


def catalog(keras: bool = False) -> list[tuple[str, list[tuple[str, Any, str]], str, str]]:
    """``describe()`` rows with their origin (built-in, composition, register(), entry point);
    ``keras=True`` adds a row for Keras's own schedules."""
    rows: list[tuple[Any, ...]] = []
    for name in names():
        spec = _spec(name)
        if isinstance(spec, str):
            rows.append((name, [], spec, "entry point (fails to load)"))
        else:
            rows.append((name, _params(spec), spec.doc, spec.origin))
    return rows + ([KERAS_ROW] if keras else [])
