"""Which spec a schedule name stands for: a registered formula (built-in, composition,
``register()``-ed), ``keras:<Class>``, ``package.module:function`` or an installed entry point."""

from __future__ import annotations

from typing import Any

from clrbench.errors import ScheduleError
from clrbench.quiet import startup_silenced
from clrbench.schedules import formulas, modern  # noqa: F401  (register the built-ins)
from clrbench.schedules.plugins import entry_points, from_entry_point, from_import_path
from clrbench.schedules.spec import REGISTRY, Spec
from clrbench.text import did_you_mean

_RESOLVED: dict[str, Spec] = {}


def names() -> list[str]:
    """Schedule names: built-ins, compositions, ``register()``-ed plug-ins and installed
    ``clrbench.schedules`` entry points, sorted (dotted paths and ``keras:`` names resolve too)."""
    return sorted(set(REGISTRY) | set(entry_points()))


def resolve(name: Any) -> Spec:
    """The spec behind a schedule name (the last three kinds resolved on first use, cached)."""
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"a schedule name must be a non-empty string, got {name!r}")
    spec = REGISTRY.get(name) or _RESOLVED.get(name)
    if spec is not None:
        return spec
    if name.startswith("keras:"):
        with startup_silenced():  # TensorFlow, on first use only: its start-up lines hidden
            from clrbench.schedules.keras_adapter import keras_spec

        spec = keras_spec(name)
    elif ":" in name:
        spec = from_import_path(name)
    else:
        point = entry_points().get(name)
        if point is None:
            raise ScheduleError(
                f"unknown schedule {name!r}{did_you_mean(name, names())}; valid: "
                f"{', '.join(names())}, 'package.module:function' or 'keras:<Class>'"
            )
        spec = from_entry_point(point)
    _RESOLVED[name] = spec
    return spec


def roles(name: str) -> dict[str, str]:
    """``{parameter: role}`` of schedule ``name`` (see ``spec`` for the roles)."""
    return resolve(name).roles
