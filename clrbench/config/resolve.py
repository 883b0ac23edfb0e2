"""From keyword options to validated experiments: the one resolver behind ``clrbench.run`` (and
the command line's ``run``, which passes its flags here with underscores), the workloads a
``workload`` option names, and the default-folder rule shared with the study.

``config`` is a TOML file's path or its parsed mapping (``None``: the preset, ``default`` unless
``preset=`` names another); the options then override it, each validated once by
:meth:`Experiment.from_dict` and :meth:`Experiment.with_workload`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from clrbench.config.experiment import Experiment
from clrbench.config.parse import load_toml
from clrbench.config.presets import PRESETS, preset
from clrbench.config.workloads import DEFAULT_WORKLOAD, named
from clrbench.data.load import dataset_counts
from clrbench.errors import ConfigError
from clrbench.text import did_you_mean

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | None
# the experiment's own settings a keyword option overrides (None: keep the experiment's)
WORKLOAD_OPTIONS = (
    "dataset",
    "epochs",
    "batch_size",
    "train_size",
    "optimizer",
    "threads",
    "eval_every",
)
EXPERIMENT_OPTIONS = ("preset", "workload", "seeds", "first_seed", "schedules", *WORKLOAD_OPTIONS)


def check_options(options: Mapping[str, Any], known: Sequence[str], what: str) -> None:
    """ConfigError naming the first option that ``what`` does not take."""
    for key in options:
        if key not in known:
            raise ConfigError(f"{what}: unknown option {key!r}{did_you_mean(key, known)}")


def names_list(value: str | Sequence[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` as a list of names, blanks dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def workload_names(workload: str | Sequence[str] | None) -> list[str | None]:
    """The workloads ``workload`` names, in order, each once (``[None]``: the experiment's own)."""
    if not workload:
        return [None]
    names = list(dict.fromkeys(names_list(workload)))
    if not names:
        raise ConfigError("--workload needs at least one workload name")
    return list(names)


def load_config(config: ConfigSource) -> dict[str, Any] | None:
    """A TOML file's settings (path) or a copy of the given mapping; None when not given."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return dict(config)
    return load_toml(Path(config))


def on_workload(raw: Mapping[str, Any], workload: str) -> dict[str, Any]:
    """An experiment TOML moved to ``workload``: its data set and model, and its epochs and
    batch size (the command line may still override them)."""
    raw = dict(raw)
    settings = dict(raw.get("experiment", {}))
    for key in ("workload", "dataset", "model", "epochs", "batch_size"):
        settings.pop(key, None)
    raw["experiment"] = settings | {"workload": workload}
    return raw


def resolve_experiment(
    config: ConfigSource = None, workload: str | None = None, **options: Any
) -> Experiment:
    """Preset or TOML (on ``workload`` when given: its data, model, length and, for a preset,
    its rates), then the keyword overrides, validated."""
    check_options(options, [k for k in EXPERIMENT_OPTIONS if k != "workload"], "run")
    name = options.get("preset") or "default"
    if options.get("preset") is not None and config is not None:
        raise ConfigError("give a preset or a config, not both")
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}{did_you_mean(name, PRESETS)}")
    raw = load_config(config)
    if raw is not None:
        if workload is not None:
            raw = on_workload(raw, workload)
    elif workload is not None:
        named_workload = named(workload)
        raw = preset(name, named_workload, dataset_counts(named_workload.dataset)[0])
    else:
        raw = PRESETS[name]
    experiment = Experiment.from_dict(raw)
    overrides = {k: options.get(k) for k in WORKLOAD_OPTIONS}
    experiment = experiment.with_workload(**{k: v for k, v in overrides.items() if v is not None})
    seeds, first_seed = options.get("seeds"), options.get("first_seed")
    if seeds is not None or first_seed is not None:
        count = seeds if seeds is not None else len(experiment.seeds)
        first = first_seed or 0
        if count < 1:
            raise ConfigError(f"--seeds must be at least 1, got {count}")
        if first < 0:
            raise ConfigError(f"--first-seed must be 0 or more, got {first}")
        experiment = replace(experiment, seeds=tuple(range(first, first + count)))
    if options.get("schedules"):
        experiment = experiment.select(names_list(options["schedules"]))
    return experiment


def resolve_experiments(config: ConfigSource = None, **options: Any) -> list[Experiment]:
    """One validated experiment per workload ``workload=`` names (the experiment's own when
    none): see :func:`resolve_experiment`."""
    rest = {k: v for k, v in options.items() if k != "workload"}
    return [
        resolve_experiment(config, name, **rest) for name in workload_names(options.get("workload"))
    ]


def output_folders(
    out: str | os.PathLike[str] | None, name: str, labels: Sequence[str], suffix: bool = True
) -> tuple[list[Path], Path]:
    """Each workload's folder and the folder holding them (the one folder for one workload):
    ``out``, by default ``results/NAME`` (``NAME-WORKLOAD`` off the default workload when
    ``suffix``); with several workloads ``out/WORKLOAD``, ``out`` by default
    ``results/NAME-workloads``. The rule of ``run`` and ``study`` alike."""
    if len(set(labels)) < len(labels):
        raise ConfigError(f"--workload names one workload twice: {', '.join(labels)}")
    if len(labels) == 1:
        default = name
        if suffix and labels[0] != DEFAULT_WORKLOAD:
            default = f"{default}-{labels[0]}"
        folder = Path(out) if out is not None else Path("results") / default
        return [folder], folder
    base = Path(out) if out is not None else Path("results") / f"{name}-workloads"
    return [base / label for label in labels], base
