"""From keyword options to validated study configurations (``clrbench.study.run`` and the
command line's ``study``, which passes its flags here with underscores)."""

from __future__ import annotations

from typing import Any

from clrbench.config.resolve import (
    ConfigSource,
    check_options,
    load_config,
    names_list,
    on_workload,
    workload_names,
)
from clrbench.config.workloads import expand_workload_key, named
from clrbench.data.load import dataset_counts
from clrbench.errors import ConfigError
from clrbench.study.config import StudyConfig
from clrbench.study.presets import STUDY_PRESETS, all_families, preset
from clrbench.text import did_you_mean

# the protocol's settings a keyword option overrides (None: keep the config's)
OVERRIDES = (
    "budget",
    "seeds",
    "studies",
    "confirm_top",
    "confirm_seeds",
    "epochs",
    "train_size",
    "eval_every",
    "fresh_seeds",
)
STUDY_OPTIONS: tuple[str, ...] = ("preset", "workload", "families", "no_zero_budget")
STUDY_OPTIONS += (*OVERRIDES, "until_decided", "max_studies")


def check_families(wanted: list[str], raw: dict, standard: list[dict]) -> None:
    """Every ``families`` label is the file's or preset's, or one with a default space
    (``one-cycle``, ``sgdr``, ...): else one line listing all of them."""
    labels = [f.get("label") for f in raw.get("family", [])] + [f["label"] for f in standard]
    known = [str(label) for label in dict.fromkeys(labels)]
    unknown = [label for label in wanted if label not in known]
    if unknown:
        raise ConfigError(
            f"unknown family {unknown[0]!r}{did_you_mean(unknown[0], known)}; "
            f"choose from {', '.join(known)}"
        )


def resolve_study(
    config: ConfigSource = None, workload: str | None = None, **options: Any
) -> StudyConfig:
    """Preset or TOML (on ``workload`` when given), then the keyword overrides, validated."""
    check_options(options, [k for k in STUDY_OPTIONS if k != "workload"], "study")
    name = options.get("preset") or "reference"
    if options.get("preset") is not None and config is not None:
        raise ConfigError("give a preset or a config, not both")
    if name not in STUDY_PRESETS:
        raise ConfigError(f"unknown study preset {name!r}{did_you_mean(name, STUDY_PRESETS)}")
    wanted = names_list(options.get("families")) or None
    epochs_given = options.get("epochs")
    raw = load_config(config)
    if raw is not None:
        if workload is not None:
            raw = on_workload(raw, workload)
        epochs = expand_workload_key(raw.get("experiment", {})).get("epochs", 25)
    elif workload is not None:
        found = named(workload)
        raw = preset(name, epochs_given, found, dataset_counts(found.dataset)[0])
        epochs = raw["experiment"]["epochs"]
    else:
        raw = preset(name, epochs_given)
        epochs = raw["experiment"]["epochs"]
    if wanted:  # a known family missing from the file or preset comes with its default space
        check_families(wanted, raw, all_families(epochs))
        have = {f.get("label") for f in raw.get("family", [])}
        extra = [f for f in all_families(epochs) if f["label"] in wanted and f["label"] not in have]
        raw = raw | {"family": [*raw.get("family", []), *extra]}
    study = StudyConfig.from_dict(raw)
    changes = {k: options[k] for k in OVERRIDES if options.get(k) is not None}
    if options.get("no_zero_budget"):
        changes["zero_budget"] = False
    changes |= _until_decided(options)
    study = study.with_changes(**changes)
    return study.select(wanted) if wanted else study


def _until_decided(options: dict[str, Any]) -> dict[str, Any]:
    """``until_decided`` with ``max_studies`` N: at most N studies, stopping once every
    family is decided (one ConfigError line for a half-given or contradictory pair)."""
    until, most = options.get("until_decided"), options.get("max_studies")
    if not until and most is None:
        return {}
    if not until:
        raise ConfigError("--max-studies is the limit of --until-decided: give both")
    if most is None:
        raise ConfigError("--until-decided needs --max-studies N, the most studies to run")
    if options.get("studies") is not None:
        raise ConfigError("--until-decided decides how many studies run: drop --studies")
    if isinstance(most, bool) or not isinstance(most, int) or most < 3:
        raise ConfigError(f"--max-studies must be an integer >= 3 (the first look), got {most}")
    return {"until_decided": True, "studies": most}


def resolve_studies(config: ConfigSource = None, **options: Any) -> list[StudyConfig]:
    """One validated study per workload ``workload=`` names (the config's own when none)."""
    rest = {k: v for k, v in options.items() if k != "workload"}
    return [resolve_study(config, name, **rest) for name in workload_names(options.get("workload"))]
