"""The equal-budget study: every schedule family tuned with the same number of trials on a
validation split, the winners re-run on the test set, their rates swept for sensitivity.

Public: :func:`run` (``python -m clrbench study``) and :func:`load` (a study folder's analysis).
Everything that is the study lives in this folder: its config and search space (``config``,
``space``), presets, the protocol and its state (``protocol``, ``state``), selection
(``select``), repeats over independent tunings (``repeats``), its analysis (``analysis``) and
its report (``report``, ``tables``, ``choice_tables``, ``figures``, ``prose``, ``summary``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clrbench.errors import ConfigError
from clrbench.study.presets import OPTIONAL, STANDARD, STUDY_PRESET_HELP, STUDY_PRESETS

if TYPE_CHECKING:
    from clrbench.study.records import StudyAnalysis

__all__ = ["load", "run", "FAMILIES", "OPTIONAL_FAMILIES", "OPTIONS", "PRESETS", "PRESET_HELP"]
PRESETS = STUDY_PRESETS
PRESET_HELP = STUDY_PRESET_HELP
FAMILIES = STANDARD  # compared by default
OPTIONAL_FAMILIES = OPTIONAL
# study's options besides emit_config (its command-line flags, with underscores)
OPTIONS: tuple[str, ...] = (
    "preset",
    "workload",
    "families",
    "no_zero_budget",
    "budget",
    "seeds",
    "studies",
)
OPTIONS += ("confirm_top", "confirm_seeds", "epochs", "train_size", "eval_every")
OPTIONS += ("jobs", "backend", "scheduler", "data_dir", "quiet", "no_report")
OPTIONS += ("stack", "stack_width")
OPTIONS += ("fresh_seeds", "until_decided", "max_studies", "margin")


def run(
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    *,
    out: str | os.PathLike[str] | None,
    **options: Any,
) -> int:
    """Run a study (resumable) into ``out`` and render its report; the number of failed runs.

    ``config`` is a study TOML file (or its mapping); without it the preset
    (``preset="reference"``). ``options`` are ``python -m clrbench study``'s own, with
    underscores: ``budget=4``, ``seeds=3``, ``studies=2``, ``families=["constant",
    "clr-iter"]``, ``epochs=2``, ``train_size=1280``, ``workload="mnist1d-mlp"``,
    ``no_zero_budget=True``, ``jobs=2``, ``no_report=True``, ``quiet=True``, ``stack=False``
    (``None``: stacked where measured faster), ``stack_width=8``,
    ``emit_config="study.toml"`` (write the resolved TOML and stop). ``out=None`` is
    ``results/study-<name>``.

    >>> clrbench.study.run(out=tmp / "never", budget=0)
    Traceback (most recent call last):
    clrbench.errors.ConfigError: budget must be an integer >= 1, got 0
    >>> clrbench.study.run(out=None, preset="quick", emit_config=tmp / "quick.toml")
    0
    >>> (tmp / "quick.toml").read_text().startswith("[experiment]")
    True
    """
    from clrbench.config.resolve import check_options, workload_names
    from clrbench.study import session
    from clrbench.study.resolve import STUDY_OPTIONS, resolve_studies

    check_options(options, (*OPTIONS, "emit_config"), "study")
    how = session.execution(options)
    names = workload_names(options.get("workload"))
    configs = resolve_studies(config, **{k: v for k, v in options.items() if k in STUDY_OPTIONS})
    if options.get("emit_config"):
        if len(configs) > 1:
            raise ConfigError("--emit-config writes one study: give one --workload")
        import tomli_w

        Path(options["emit_config"]).write_text(tomli_w.dumps(configs[0].to_dict()))
        return 0
    for study in configs:
        if study.workload.is_plugin:
            from clrbench.train.models import check_plugin_model

            check_plugin_model(study.workload)
    outs = session.study_folders(out, configs, names[0] is not None)
    return sum(session.study_one(c, o, how) for c, o in zip(configs, outs, strict=True))


def load(path: str | os.PathLike[str]) -> StudyAnalysis:
    """A study folder's analysis record (``clrbench.study.records.StudyAnalysis``), from the
    folder alone (no training): its configuration and state, the winners its protocol
    recorded, each study's choices, the per-study differences on test and the verdicts
    across studies (``across``), study 0's final comparisons (``main``, ``zero``, ``versus``),
    and for a study over several optimizers the grid (``grid``). ``path`` may be a study
    folder or a rendered study report (its compact data), such as the committed reference:

    >>> analysis = clrbench.study.load(reports / "grid-mnist1d-mlp")
    >>> analysis.config.workload.dataset, len(analysis.studies)
    ('mnist1d', 5)
    >>> analysis.grid.best in analysis.winners
    True
    """
    from clrbench.study.compact import study_folder
    from clrbench.study.report import analyse_study

    return analyse_study(study_folder(path) or Path(path))
