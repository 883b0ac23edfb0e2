"""Plug-in workloads: finding one by import path or entry point, and checking its data.

What a plug-in is and must return is ``clrbench.workload_api`` (the contract). Everything it
returns is checked here before any training (types, shapes, dtypes, finite values, the label
range): each mistake is one ConfigError line naming the workload. Its model is checked where
Keras lives (``clrbench.train.models.check_plugin_model``).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import numpy as np

from clrbench import references
from clrbench.data.generated import array_sha256
from clrbench.errors import ConfigError
from clrbench.workload_api import WorkloadPlugin

ENTRY_POINT_GROUP = "clrbench.workloads"
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
MIN_TRAIN = 10


def is_plugin(name: str) -> bool:
    """Whether a dataset or model name is a plug-in's (an import path; entry-point names are
    turned into theirs by ``canonical``)."""
    return references.is_import_path(name)


def entry_points() -> dict[str, Any]:
    return references.entry_points(ENTRY_POINT_GROUP)


def canonical(name: str) -> str | None:
    """The import path of a plug-in named by import path or entry point, else None."""
    if references.is_import_path(name):
        return name
    point = entry_points().get(name)
    return point.value if point is not None else None


@functools.lru_cache(maxsize=8)
def plugin(path: str) -> WorkloadPlugin:
    """The checked WorkloadPlugin at import path ``path`` (a WorkloadPlugin or a function of no
    arguments returning one)."""
    target = references.import_path(path, ConfigError)
    if not isinstance(target, WorkloadPlugin) and callable(target):
        try:
            target = target()
        except Exception as exc:
            problem = references.first_line(exc)
            raise ConfigError(f"workload {path}: calling it raised {problem}") from None
    if not isinstance(target, WorkloadPlugin):
        raise ConfigError(
            f"workload {path}: is a {type(target).__name__}, not a "
            "clrbench.workload_api.WorkloadPlugin (or a function returning one)"
        )
    _check_fields(path, target)
    return target


def _check_fields(path: str, found: WorkloadPlugin) -> None:
    def fail(problem: str) -> None:
        raise ConfigError(f"workload {path}: {problem}")

    for name in ("load_data", "build_model"):
        if not callable(getattr(found, name)):
            fail(f"{name} must be callable, got {getattr(found, name)!r}")
    for name in ("num_classes", "epochs", "batch_size"):
        value = getattr(found, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{name} must be a positive integer, got {value!r}")
    if found.num_classes < 2:
        fail(f"num_classes must be at least 2, got {found.num_classes}")
    if found.target is not None and not _number_in(found.target, 0.0, 1.0):
        fail(f"target must be an accuracy in (0, 1] or None, got {found.target!r}")
    for name in ("base_lr", "max_lr", "constant_lr"):
        if not _number_in(getattr(found, name), 0.0, math.inf):
            fail(f"{name} must be a positive finite rate, got {getattr(found, name)!r}")
    if found.name is not None and not (isinstance(found.name, str) and _folder_safe(found.name)):
        fail(f"name must be letters, digits, '-', '_' or '.', got {found.name!r}")


def _number_in(value: Any, low: float, high: float) -> bool:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return real and math.isfinite(value) and low < value <= high


def _folder_safe(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_." for c in name) and name[0] != "."


def plugin_name(path: str) -> str:
    """The plug-in's short name: its ``name``, else the attribute of its import path."""
    return plugin(path).name or path.rpartition(":")[2].rpartition(".")[2]


@functools.lru_cache(maxsize=4)
def plugin_arrays(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The plug-in's four arrays, checked (inputs float32, labels int32, read-only), and the
    SHA-256 of each: loaded once per process."""
    found = plugin(path)
    try:
        returned = found.load_data()
    except Exception as exc:
        problem = references.first_line(exc)
        raise ConfigError(f"workload {path}: load_data() raised {problem}") from None
    arrays = _check_arrays(path, returned, found.num_classes)
    return arrays, {name: array_sha256(array) for name, array in arrays.items()}


def _check_arrays(path: str, returned: Any, num_classes: int) -> dict[str, np.ndarray]:
    where = f"workload {path}: load_data()"
    if not isinstance(returned, tuple | list) or len(returned) != 4:
        raise ConfigError(f"{where} must return (x_train, y_train, x_test, y_test)")
    raw = dict(zip(ARRAY_NAMES, returned, strict=True))
    arrays: dict[str, np.ndarray] = {}
    for name in ("x_train", "x_test"):
        x = np.asarray(raw[name])
        if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise ConfigError(f"{where}: {name} must be real numbers, got dtype {x.dtype}")
        if x.ndim < 2:
            raise ConfigError(f"{where}: {name} must be (examples, ...), got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        bad = np.size(x) - np.count_nonzero(np.isfinite(x))
        if bad:
            raise ConfigError(f"{where}: {name} has {bad} non-finite value(s) (NaN or inf)")
        arrays[name] = x
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ConfigError(
            f"{where}: x_train examples are {arrays['x_train'].shape[1:]}, "
            f"x_test's {arrays['x_test'].shape[1:]}"
        )
    for name, x_name in (("y_train", "x_train"), ("y_test", "x_test")):
        y = np.asarray(raw[name])
        if not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(f"{where}: {name} must be integer class indices, got {y.dtype}")
        if y.shape != (len(arrays[x_name]),):
            raise ConfigError(
                f"{where}: {name} must be one label per example, shape "
                f"({len(arrays[x_name])},), got {y.shape}"
            )
        outside = np.count_nonzero((y < 0) | (y >= num_classes))
        if outside:
            raise ConfigError(
                f"{where}: {name} has {outside} label(s) outside 0..{num_classes - 1} "
                f"(num_classes = {num_classes})"
            )
        arrays[name] = np.ascontiguousarray(y, dtype=np.int32)
    if len(arrays["y_train"]) < MIN_TRAIN or len(arrays["y_test"]) < 1:
        raise ConfigError(f"{where}: needs at least {MIN_TRAIN} training and 1 test example")
    for array in arrays.values():
        array.flags.writeable = False
    return arrays
