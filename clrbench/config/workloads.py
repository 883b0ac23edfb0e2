"""Workloads by name: the built-in ones and plug-ins, each with its own defaults.

A named workload is a data set and a model (what ``Workload.dataset``/``model`` hold, so a run
id is what it always was) plus the defaults a run of it starts from: epochs, batch size, the
rates its presets use (checked on validation: docs/guides/workloads.md) and the accuracy its
time-to-target is measured at. ``mnist-mlp`` is the default, exactly the training clrbench has
always done. A plug-in (``clrbench.workload_api``) is named by ``package.module:attribute`` or
by a ``clrbench.workloads`` entry point, and brings its own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clrbench.config.workload import DEFAULT_MODEL, Workload
from clrbench.data import plugin
from clrbench.errors import ConfigError
from clrbench.text import did_you_mean


@dataclass(frozen=True)
class NamedWorkload:
    """A workload's name and defaults (``dataset``/``model``: the Workload's fields)."""

    name: str
    dataset: str
    model: str
    epochs: int
    batch_size: int
    target: float | None  # evaluation-set accuracy for time-to-target (None: data-driven)
    base_lr: float  # the presets' cyclic bounds and constant rate
    max_lr: float
    constant_lr: float
    about: str
    # The smallest difference of final test accuracy that matters, in pp: within ±margin two
    # schedules are "equivalent" (docs/concepts/protocol.md, "The margin", says why each value;
    # None: no margin, equivalence is not tested unless --margin gives one).
    margin_pp: float | None = None

    def workload(self, **changes: object) -> Workload:
        """The Workload of a run of it at its defaults, changed by ``changes``."""
        settings: dict[str, object] = {
            "dataset": self.dataset,
            "model": self.model,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
        }
        return Workload(**(settings | changes))  # type: ignore[arg-type]

    @property
    def is_plugin(self) -> bool:
        return plugin.is_plugin(self.dataset)


DEFAULT_WORKLOAD = "mnist-mlp"
BUILT_IN: dict[str, NamedWorkload] = {
    workload.name: workload
    for workload in (
        NamedWorkload(
            name="mnist-mlp",
            dataset="mnist",
            model=DEFAULT_MODEL,
            epochs=25,
            batch_size=128,
            target=0.98,
            base_lr=0.02,
            max_lr=0.2,
            constant_lr=0.1,
            about="MNIST, Dense 512 relu -> Dense 10 softmax (the seed blog's benchmark)",
            margin_pp=0.1,  # 10 of 10,000 test images; seed sd of one run 0.05-0.07 pp
        ),
        # Rates checked on validation (50,000 train / 10,000 validation, 25 epochs, 2 seeds;
        # final validation accuracy): constant 0.0125 / 0.025 / 0.05 / 0.1 / 0.2 gave 89.50 /
        # 89.74 / 89.22 / 88.23 / 86.45%; triangular 0.005-0.05 / 0.01-0.1 / 0.02-0.2 / 0.04-0.4
        # 90.25 / 90.16 / 89.21 / 86.46%; step decay from 0.05 / 0.1 / 0.2 / 0.4 90.12 / 89.99 /
        # 89.19 / 84.74%. MNIST's rates are ~1 pp worse here, so each family gets a rate within
        # 0.15 pp of its best: constant 0.025, cycles (and sine-exp) 0.01-0.1, decay from 0.1.
        # The target, 89%, is one every family's preset rate passes on validation.
        NamedWorkload(
            name="fashion-mnist-mlp",
            dataset="fashion_mnist",
            model=DEFAULT_MODEL,
            epochs=25,
            batch_size=128,
            target=0.89,
            base_lr=0.01,
            max_lr=0.1,
            constant_lr=0.025,
            about="Fashion-MNIST, the same Dense 512 model",
            margin_pp=0.25,  # 25 of 10,000 test images; seed sd of one run 0.12-0.28 pp
        ),
        # Rates checked on validation (3,000 train / 1,000 validation, 100 epochs, 3 seeds):
        # constant 0.0125 / 0.025 / 0.05 / 0.1 / 0.2 / 0.4 gave 59.5 / 60.3 / 62.0 / 64.2 /
        # 57.1 / 10.8%; triangular 0.005-0.05 / 0.01-0.1 / 0.02-0.2 / 0.04-0.4 61.0 / 62.6 /
        # 65.1 / 33.1%; step decay from 0.05 / 0.1 / 0.2 / 0.4 62.0 / 64.2 / 66.2 / 64.5%: each
        # of MNIST's rates is its family's best here, so they are kept. Target 60%: every
        # family's preset rate passes it on validation.
        NamedWorkload(
            name="mnist1d-mlp",
            dataset="mnist1d",
            model="mlp-100-100",
            epochs=100,
            batch_size=128,
            target=0.6,
            base_lr=0.02,
            max_lr=0.2,
            constant_lr=0.1,
            about="MNIST-1D (4,000 generated 40-value sequences), Dense 100-100 relu: "
            "small data, overfitting",
            margin_pp=1.0,  # 10 of 1,000 test sequences; seed sd of one run 1.1-1.3 pp
        ),
    )
}


def named(name: str) -> NamedWorkload:
    """A built-in workload by name, or a plug-in's by import path or entry point (imported and
    checked: one ConfigError line)."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    path = plugin.canonical(name)
    if path is None:
        known = [*BUILT_IN, *plugin.entry_points()]
        raise ConfigError(
            f"unknown workload {name!r}{did_you_mean(name, known)}; choose {', '.join(known)}, "
            "or a plug-in's package.module:attribute"
        )
    return _of_plugin(path)


def _of_plugin(path: str) -> NamedWorkload:
    found = plugin.plugin(path)
    return NamedWorkload(
        name=plugin.plugin_name(path),
        dataset=path,
        model=path,
        epochs=found.epochs,
        batch_size=found.batch_size,
        target=found.target,
        base_lr=found.base_lr,
        max_lr=found.max_lr,
        constant_lr=found.constant_lr,
        about=found.about or f"plug-in {path}",
        margin_pp=found.margin_pp,
    )


def named_of(workload: Workload) -> NamedWorkload | None:
    """The named workload whose data set and model ``workload`` trains, if any."""
    if workload.is_plugin:
        return _of_plugin(workload.dataset)
    for candidate in BUILT_IN.values():
        if (candidate.dataset, candidate.model) == (workload.dataset, workload.model):
            return candidate
    return None


def name_of(workload: Workload) -> str:
    """What a workload is called: its named workload's name, else ``dataset/model``."""
    found = named_of(workload)
    return found.name if found is not None else f"{workload.dataset}/{workload.model}"


def at_defaults(workload: Workload) -> bool:
    """Whether ``workload`` runs its named workload's own length on all of its data (then its
    ``target`` applies; a shortened or subset run gets the report's data-driven target)."""
    found = named_of(workload)
    return (
        found is not None
        and workload.epochs == found.epochs
        and workload.batch_size == found.batch_size
        and workload.train_size is None
    )


def expand_workload_key(settings: dict[str, Any]) -> dict[str, Any]:
    """``[experiment]`` settings with a ``workload = NAME`` key replaced by that workload's
    dataset and model, and its epochs and batch size where the settings do not give them."""
    settings = dict(settings)
    name = settings.pop("workload", None)
    if name is None:
        return settings
    if not isinstance(name, str) or not name:
        raise ConfigError(f"[experiment] workload must be a non-empty string, got {name!r}")
    found = named(name)
    for key in ("dataset", "model"):
        given = settings.get(key, getattr(found, key))
        if given != getattr(found, key):
            raise ConfigError(
                f"[experiment] workload {name!r} trains {key} {getattr(found, key)!r}; "
                f"drop {key} = {given!r}"
            )
    defaults = {"dataset": found.dataset, "model": found.model, "epochs": found.epochs}
    return defaults | {"batch_size": found.batch_size} | settings


def study_validation_size(workload: NamedWorkload, train_count: int) -> int:
    """The study's validation split for a workload: 10,000 of MNIST's 60,000 training images,
    the same sixth of a smaller training set."""
    return 10_000 if train_count >= 60_000 else max(10, round(train_count / 6))
