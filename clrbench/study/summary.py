"""STUDY/report/summary.json: the study's results machine-readably, from the same analysis as
the report's tables (accuracies and differences as fractions; undefined values null,
infinite ones "inf": the one JSON convention, ``clrbench.text.json_value``).

Fields: ``format``, ``clrbench_version``, ``training_semantics``, ``name``, ``studies``,
``families``, ``baseline``, ``protocol`` (budget, confirmation, sensitivity, final seeds,
workload), ``per_study`` (per study: its seeds, winners with parameters and confirmation means,
final test accuracy and difference to the baseline per family, the families that won it, the
families the sensitivity check flagged), ``headline`` (per family: the ``across_studies``
columns), ``baseline_wins``, ``warnings`` (the report's warning lines) and, for a study whose
families span more than one optimizer, ``grid`` (``clrbench.study.grid``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.store import atomic
from clrbench.study import prose as study_prose
from clrbench.study.repeats import baseline_wins
from clrbench.study.select import NOISE_SE
from clrbench.text import json_plain
from clrbench.version import __version__

if TYPE_CHECKING:
    from clrbench.study.records import DrawAnalysis, StudyAnalysis

SUMMARY = "summary.json"
SUMMARY_FORMAT = "clrbench-study-summary/1"


def _protocol(config: Any) -> dict[str, Any]:
    workload = config.workload
    return {
        "budget": config.budget,
        "confirm_top": config.confirm_top,
        "confirm_seeds": config.confirm_seeds,
        "sensitivity_seeds": config.sensitivity_seeds,
        "octaves": list(config.octaves),
        "noise_standard_errors": NOISE_SE,
        "final_seeds": list(range(config.first_seed, config.first_seed + config.seeds)),
        "fresh_seeds": config.fresh_seeds,  # each study's own final seeds: per_study[i].seeds
        "until_decided": config.until_decided,
        "max_studies": config.studies if config.until_decided else None,
        "dataset": workload.dataset,
        "epochs": workload.epochs,
        "train_size": workload.train_size,
        "validation_size": workload.validation_size,
        "split_seed": workload.split_seed,
    }


def _winner(winner: dict[str, Any]) -> dict[str, Any]:
    keys = ("label", "params", "source", "confirmed", "confirmation_mean", "replaced")
    return {k: winner.get(k) for k in keys} | {"tuning_accuracy": winner["validation_accuracy"]}


def _study(analysis: StudyAnalysis, study: DrawAnalysis) -> dict[str, Any]:
    index, choice = study.index, study.choice
    rows = analysis.per_study
    rows = rows[rows["study"] == index] if len(rows) else rows
    records = analysis.state.studies
    check = choice.check
    return {
        "study": index,
        "seeds": records[index].seeds if index < len(records) else {},
        "winners": {family: _winner(w) for family, w in choice.winners.items()},
        "final_test_accuracy": dict(zip(rows.get("family", []), rows.get("mean", []), strict=True)),
        "difference": dict(zip(rows.get("family", []), rows.get("difference", []), strict=True)),
        "best": [str(f) for f in rows[rows["best"]]["family"]] if len(rows) else [],
        "flagged": [] if check is None else [str(f) for f in check[check["flagged"]]["family"]],
    }


def _budget(curve: Any) -> dict[str, Any]:
    """Per family: the budgets k and the expected best validation score over studies with its
    95% band (``study.analysis.budget_over_studies``)."""
    return {
        str(family): {column: group[column].tolist() for column in ("k", "expected", "low", "high")}
        for family, group in curve.groupby("family", sort=False)
    }


def summary(analysis: StudyAnalysis) -> dict[str, Any]:
    """The summary document of a study analysis (``report.study.study_analysis``)."""
    config = analysis.config
    headline = {
        str(row["family"]): {k: v for k, v in row.items() if k != "family"}
        for row in analysis.across.to_dict("records")
    }
    document = {
        "format": SUMMARY_FORMAT,
        "clrbench_version": __version__,
        "training_semantics": TRAINING_SEMANTICS,
        "name": config.name,
        "studies": config.studies,
        "studies_done": int(analysis.per_study["study"].nunique())
        if len(analysis.per_study)
        else 0,
        "families": [f.label for f in config.families],
        "baseline": analysis.baseline,
        "margin": analysis.margin.to_json(),
        "primary_test": "grand mean of the (study x seed) paired differences, decided at the "
        "margin: better / worse / equivalent / undecided (docs/concepts/protocol.md)",
        "protocol": _protocol(config),
        "per_study": [_study(analysis, s) for s in analysis.studies],
        "headline": headline,
        "baseline_wins": baseline_wins(analysis.per_study, analysis.baseline),
        "expected_best_vs_budget": _budget(analysis.budget_over_studies),
        "warnings": study_prose.sensitivity_warnings(analysis.studies),
    }
    if analysis.grid is not None:
        document["grid"] = _grid(analysis.grid)
    return json_plain(document)


def _grid(grid: Any) -> dict[str, Any]:
    """The grid (``clrbench.study.grid.GridAnalysis``): per family its cell (row, column,
    baseline, the primary test's columns, validation mean, studies won, train s per run), the
    best family on validation with every family against it, and the cycles' question."""
    cells = {str(r["family"]): {k: v for k, v in r.items() if k != "family"}
             for r in grid.cells.to_dict("records")}  # fmt: skip
    versus = {str(r["family"]): {k: v for k, v in r.items() if k != "family"}
              for r in grid.versus_best.to_dict("records")}  # fmt: skip
    return {"cells": cells, "best": grid.best, "versus_best": versus,
            "cycles": grid.cycles.to_dict("records"), "margin": grid.margin}  # fmt: skip


def write_summary(analysis: StudyAnalysis, out_dir: str | Path) -> Path:
    """Write OUT/summary.json (atomically); returns its path."""
    path = Path(out_dir) / SUMMARY
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(summary(analysis), indent=2, allow_nan=False) + "\n")
    return path
