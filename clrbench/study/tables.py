"""The study report's own tables: winners, tuning effort, sensitivity, trials, the protocol.

Their notes are ``templates/words/study_notes.j2``'s (:func:`clrbench.reporting.words.say`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from clrbench.reporting.words import say
from clrbench.study import figures as study_figures
from clrbench.study import prose as study_prose
from clrbench.study.config import STUDY_SEED_STRIDE, StudyConfig
from clrbench.text import pct

if TYPE_CHECKING:
    from clrbench.study.records import StudyAnalysis


def _params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def winners_table(analysis: StudyAnalysis) -> dict[str, Any]:
    scores, config = analysis.scores, analysis.config
    schedules = {f.label: f"{f.name} ({f.granularity})" for f in config.families}
    rows = []
    for family, group in scores.groupby("family", sort=False):
        counts = group["status"].value_counts()
        tally = "/".join(str(int(counts.get(s, 0))) for s in ("ok", "diverged", "failed"))
        winner = analysis.winners.get(family)
        rows.append(
            [family, schedules.get(family, ""), tally]
            + (
                [
                    winner["label"],
                    pct(winner["validation_accuracy"]),
                    pct(winner.get("confirmation_mean", float("nan"))),
                    _params(winner["params"]),
                ]
                if winner
                else ["–", "–", "–", "no ok trial"]
            )
        )
    headers = [
        "Family",
        "Schedule",
        "Trials ok/diverged/failed",
        "Winner",
        "Tuning seed acc. %",
        "Confirmation mean %",
        "Chosen parameters",
    ]
    note = say(
        "study_notes",
        "winners",
        budget=config.budget,
        sampling_seed=config.sampling_seed,
        tuning_seed=config.tuning_seed,
        confirm_top=config.confirm_top,
        confirm_seeds=config.confirm_seeds,
    )
    return {
        "id": "winners",
        "title": "Winners (chosen on validation)",
        "headers": headers,
        "rows": rows,
        "note": note,
    }


def budget_table(curve: pd.DataFrame, chance: float) -> dict[str, Any]:
    ks = sorted(set(curve["k"]))
    shown = [k for k in ks if k & (k - 1) == 0 or k == ks[-1]]  # 1, 2, 4, 8, ..., N
    rows = []
    for family, group in curve.groupby("family", sort=False):
        cells = group.set_index("k")
        rows.append(
            [family]
            + [
                f"{pct(cells.loc[k, 'expected'])} ({pct(cells.loc[k, 'low'])}–"
                f"{pct(cells.loc[k, 'high'])})"
                if k in cells.index
                else "–"
                for k in shown
            ]
        )
    note = say("study_notes", "budget", chance)
    return {
        "id": "budget",
        "title": "Tuning effort: best vs budget",
        "headers": ["Family", *[f"k = {k}" for k in shown]],
        "rows": rows,
        "note": note,
    }


def budget_over_studies_table(curve: pd.DataFrame, chance: float) -> dict[str, Any]:
    """The expected best validation accuracy vs trials over every study, with its band."""
    table = budget_table(curve, chance)
    studies = int(curve["studies"].max()) if len(curve) else 0
    note = say("study_notes", "budget_over_studies", studies, chance)
    title = "Tuning effort over every study: expected best vs budget"
    return table | {"id": "budget-over-studies", "title": title, "note": note}


def sensitivity_table(analysis: StudyAnalysis) -> dict[str, Any]:
    flat, curve, config = analysis.flat, analysis.curve, analysis.config
    assert flat is not None and curve is not None  # shown only after the sweep
    rows = []
    for r in flat.itertuples():
        bad = curve[(curve["family"] == r.family) & (curve["status"] != "ok")]
        rows.append(
            [
                r.family,
                study_figures.multiplier_label(int(r.best_k)) if pd.notna(r.best_k) else "–",
                pct(r.best),
                f"{2.0**r.low:.3g} to {2.0**r.high:.3g}" if pd.notna(r.low) else "–",
                study_prose.width_text(r) if pd.notna(r.width) else "–",
                ", ".join(
                    f"×{m:g} ({s})" for m, s in zip(bad["multiplier"], bad["status"], strict=True)
                )
                or "none",
            ]
        )
    headers = [
        "Family",
        "Best multiplier",
        "Best validation acc. %",
        "Flat range (multiplier)",
        "Width (octaves)",
        "Not ok",
    ]
    note = say(
        "study_notes", "sensitivity", config.octaves, config.sensitivity_seeds, config.flatness_pp
    )
    return {
        "id": "sensitivity",
        "title": "Sensitivity to the rate",
        "headers": headers,
        "rows": rows,
        "note": note,
    }


def trials_table(scores: pd.DataFrame) -> dict[str, Any]:
    rows = [
        [r.label, r.family, r.status, pct(r.validation_accuracy), _params(r.params)]
        for r in scores.itertuples()
    ]
    headers = ["Trial", "Family", "Status", "Final validation acc. %", "Parameters"]
    return {"id": "trials", "title": "Every trial", "headers": headers, "rows": rows, "note": None}


def protocol_rows(analysis: StudyAnalysis) -> list[tuple[str, str]]:
    config, split = analysis.config, analysis.state.split
    return [
        (
            "validation split",
            f"{split['train_examples']:,} train / {split['validation_examples']:,} "
            f"validation of the {split['dataset']} training set, stratified, "
            f"split seed {split['split_seed']}",
        ),
        ("split checksum", f"SHA-256 of the validation indices: {split['validation_sha256']}"),
        (
            "training set of every run",
            f"{config.workload.train_size:,} images of the train split"
            if config.workload.train_size
            else "the whole train split",
        ),
        (
            "workload",
            f"{config.workload.epochs} epochs, batch {config.workload.batch_size}, "
            f"{config.workload.optimizer}{_own_optimizers(config)}",
        ),
        (
            "budget",
            f"{config.budget} trials per family, tuning seed {config.tuning_seed}, "
            f"sampling seed {config.sampling_seed}",
        ),
        (
            "sensitivity",
            f"multipliers 2^k for k = {list(config.octaves)}, {config.sensitivity_seeds} seeds "
            f"from {config.sensitivity_first_seed}, flat within {config.flatness_pp:g} pp",
        ),
        (
            "confirmation",
            f"the best {config.confirm_top} trials per family x {config.confirm_seeds} seeds from "
            f"{config.confirm_first_seed}; a sweep's multiplier beyond its noise re-checked on them"
            if config.confirm_top
            else "off (the winner is the best single-seed trial)",
        ),
        (
            "studies",
            (
                f"until every family is decided, at most {config.studies}"
                if config.until_decided
                else str(config.studies)
            )
            + f": study i adds {STUDY_SEED_STRIDE:,} x i to the sampling, tuning, confirmation "
            + (
                "and sensitivity seeds and to the final seeds (fresh seeds); the split is shared"
                if config.fresh_seeds
                else "and sensitivity seeds; the split and the final seeds are shared"
            ),
        ),
        (
            "margin",
            f"{analysis.margin.text} ({analysis.margin.source})",
        ),
        (
            "final re-runs",
            f"{config.seeds} seeds from {config.first_seed}, trained on the train split, "
            "evaluated on test",
        ),
        ("zero-budget arm", "on" if config.zero_budget else "off"),
        ("dataset md5", json.dumps(split.get("dataset_md5", {}), sort_keys=True)),
        ("phases", json.dumps(analysis.state.phases, sort_keys=True)),
    ]


def _own_optimizers(config: StudyConfig) -> str:
    """`` (family: optimizer; ...)`` for the families that train their own optimizer."""
    own = [
        f"{f.label}: {f.optimizer}"
        for f in config.families
        if f.optimizer is not None and f.optimizer != config.workload.optimizer
    ]
    return f" ({'; '.join(own)})" if own else ""
