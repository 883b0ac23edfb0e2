"""Objects named by ``package.module:attribute`` or by an installed entry point: the one
resolver behind plug-in schedules and plug-in workloads. Every failure is one line of the
caller's error class (the CLI exits 2 on it)."""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from clrbench.errors import ClrbenchError


def is_import_path(text: str) -> bool:
    """Whether ``text`` has the ``package.module:attribute`` shape."""
    module, colon, attribute = text.partition(":")
    return bool(colon and module and attribute)


def import_path(path: str, error: type[ClrbenchError]) -> Any:
    """The object ``package.module:attribute`` names (dots in the attribute walk into it)."""
    module_name, _, attribute = path.partition(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises while importing
        raise error(f"{path}: cannot import {module_name!r} ({first_line(exc)})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise error(f"{path}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    return target


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of ``group`` by name (the first of a repeated name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for point in metadata.entry_points(group=group):
        found.setdefault(point.name, point)
    return found


def load_entry_point(point: metadata.EntryPoint, error: type[ClrbenchError]) -> Any:
    try:
        return point.load()
    except Exception as exc:
        problem = first_line(exc)
        raise error(f"{point.name}: entry point {point.value} cannot load ({problem})") from None


def distribution(point: metadata.EntryPoint) -> str:
    """``name version`` of the package that installed ``point`` (else its value)."""
    dist = point.dist
    return f"{dist.name} {dist.version}" if dist is not None else point.value


def first_line(exc: BaseException) -> str:
    """``Type: message``, its first line only (an error here is one line)."""
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]
