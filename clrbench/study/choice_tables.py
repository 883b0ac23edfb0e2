"""The study report's tables of how winners were chosen and of the repeated studies: the
confirmation of the best trials, the sensitivity re-check, every study's winners and the
headline across studies.

Their notes are ``templates/words/study_notes.j2``'s (:func:`clrbench.reporting.words.say`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from clrbench.analysis.stats import ALPHA
from clrbench.reporting.words import say
from clrbench.study import figures as study_figures
from clrbench.study.config import STUDY_SEED_STRIDE
from clrbench.study.repeats import baseline_wins, smallest_p
from clrbench.study.select import NOISE_SE
from clrbench.text import format_p, pct, pp

if TYPE_CHECKING:
    from clrbench.study.records import StudyAnalysis
    from clrbench.study.select import Choice


def _study_column(analysis: StudyAnalysis) -> bool:
    return analysis.config.studies > 1


def confirmation_table(analysis: StudyAnalysis) -> dict[str, Any]:
    """Every candidate of every study: its tuning score, its confirmation mean, the winner."""
    config, many = analysis.config, _study_column(analysis)
    rows = []
    for study in analysis.studies:
        choice = study.choice
        means = {} if choice.means is None else _by_label(choice.means)
        for family, group in choice.candidates.items():
            confirmed = choice.confirmed.get(family, {}).get("label")
            for c in group:
                row = means.get(c["label"])
                cells = [family, c["label"], pct(c["validation_accuracy"])]
                cells += _mean_cells(row) + ["✓" if c["label"] == confirmed else ""]
                rows.append(([str(study.index)] if many else []) + cells)
    headers = ["Family", "Candidate", "Tuning seed acc. %", "Confirmation mean %"]
    headers += ["Seeds scored / diverged", "Confirmed"]
    seeds = config.draw_seeds(0)["confirmation"]
    note = say("study_notes", "confirmation", config.confirm_top, seeds, config.workload.chance)
    return {
        "id": "confirmation",
        "title": "Confirmed winners",
        "headers": (["Study"] if many else []) + headers,
        "rows": rows,
        "note": note,
    }


def _by_label(means: Any) -> dict[str, dict[str, Any]]:
    return {row["label"]: row for row in means.to_dict("records")}


def _mean_cells(row: Any) -> list[str]:
    if row is None:
        return ["–", "–"]
    return [pct(row["mean"]), f"{int(row['scored'])} / {int(row['diverged'])}"]


def recheck_table(analysis: StudyAnalysis) -> dict[str, Any]:
    """Per study and family: the sweep's best multiplier against x1, the noise, the re-check."""
    many, rows = _study_column(analysis), []
    for study in analysis.studies:
        choice = study.choice
        if choice.check is None:
            continue
        rechecked = choice.recheck_means
        by_label = (
            {k: v["mean"] for k, v in _by_label(rechecked).items()} if rechecked is not None else {}
        )
        for r in choice.check.itertuples():
            best = study_figures.multiplier_label(int(r.best_k)) if np.isfinite(r.best_k) else "–"
            cells = [r.family, best, pct(r.best_mean), pct(r.one_mean), pp(r.difference)]
            cells += [
                pp(r.threshold).lstrip("+"),
                r.reason,
                recheck_outcome(choice, r.family, by_label),
            ]
            rows.append(([str(study.index)] if many else []) + cells)
    headers = ["Family", "Sweep's best", "Its mean %", "×1 mean %", "Difference pp"]
    headers += ["Noise threshold pp", "Verdict", "Re-check on the confirmation seeds"]
    config = analysis.config
    note = say(
        "study_notes",
        "recheck",
        sweep_seeds=config.sensitivity_seeds,
        noise_se=NOISE_SE,
        confirm_seeds=config.confirm_seeds,
        confirmation=bool(config.confirm_top),
    )
    return {
        "id": "recheck",
        "title": "Sensitivity check of the winners",
        "headers": (["Study"] if many else []) + headers,
        "rows": rows,
        "note": note,
    }


def recheck_outcome(choice: Choice, family: str, by_label: dict[str, float]) -> str:
    """What the re-check of ``family`` did, in words."""
    candidate = choice.rechecks.get(family)
    if candidate is None:
        return "–"
    mean = by_label.get(candidate["label"], float("nan"))
    if not np.isfinite(mean):
        return "not trained yet"
    winner = choice.confirmed[family]
    new = choice.winners[family]["label"] == candidate["label"]
    verdict = "replaces the winner" if new else "the winner stays"
    return f"{pct(mean)}% vs {pct(winner['confirmation_mean'])}%: {verdict}"


def per_study_table(analysis: StudyAnalysis) -> dict[str, Any]:
    """Every study's winners and their final test accuracy, with the paired difference."""
    table, rows = analysis.per_study, []
    winners = {s.index: s.choice.winners for s in analysis.studies}
    for r in table.itertuples():
        winner = winners.get(r.study, {}).get(r.family, {})
        diverged = f" ({r.diverged} diverged)" if r.diverged else ""
        confirmed = pct(winner.get("confirmation_mean", np.nan))
        rows.append(
            [str(r.study), r.family, winner.get("label", "–"), confirmed]
            + [pct(r.mean) + diverged, pp(r.difference), "✓" if r.best else ""]
        )
    headers = ["Study", "Family", "Winner", "Confirmation mean % (validation)"]
    headers += ["Final test acc. % (mean)", f"vs {analysis.baseline} pp", "Best"]
    config = analysis.config
    note = say(
        "study_notes",
        "per_study",
        seeds=config.final_seeds(0),
        fresh_seeds=config.fresh_seeds,
        stride=STUDY_SEED_STRIDE,
        baseline=analysis.baseline,
        chance=config.workload.chance,
    )
    return {
        "id": "per-study",
        "title": "Every study's winners on test",
        "headers": headers,
        "rows": rows,
        "note": note,
    }


def _interval(low: float, high: float) -> str:
    return f"{pp(low)} to {pp(high)}" if np.isfinite(low) and np.isfinite(high) else "–"


def _p(value: float) -> str:
    return format_p(value) if np.isfinite(value) else "–"


def across_table(analysis: StudyAnalysis) -> dict[str, Any]:
    """The headline: per family, the primary test's decided answer against the tuned baseline
    across studies, with the spread, the wins and the probability of improvement."""
    across, n = analysis.across, analysis.config.studies
    rows = []
    for r in across.itertuples():
        improvement = "–"
        if np.isfinite(r.p_improvement):
            improvement = f"{r.p_improvement:.2f}"
            if np.isfinite(r.p_improvement_low):
                improvement += f" ({r.p_improvement_low:.2f}–{r.p_improvement_high:.2f})"
        rows.append(
            [r.family, str(r.studies), pp(r.estimate), _interval(r.ci_low, r.ci_high),
             _interval(r.ci90_low, r.ci90_high), _p(r.p_difference_holm),
             _p(r.p_equivalence_holm), improvement, f"{pp(r.low)} to {pp(r.high)}",
             f"{r.wins} of {r.studies}", f"{r.positive}/{r.negative}", r.verdict]
        )  # fmt: skip
    per_study = analysis.per_study
    if len(per_study):
        done = int(per_study["study"].nunique())
        wins = baseline_wins(per_study, analysis.baseline)
        rows.append([analysis.baseline, str(done), "–", "–", "–", "–", "–", "–", "–",
                     f"{wins} of {done}", "–", "the tuned baseline"])  # fmt: skip
    headers = ["Family", "Studies", "Difference pp", "95% CI pp", "90% CI pp", "p (Holm)"]
    headers += ["p equivalent (TOST, Holm)", "P(better) (95% CI)", "Range pp", "Won"]
    headers += ["Studies +/−", "Outcome"]
    margin = analysis.margin
    design = str(across["seeds_design"].iloc[0]) if len(across) else ""
    note = say(
        "study_notes",
        "across",
        studies=n,
        design=design,
        shared_seeds=design.startswith("same"),
        sequential=analysis.config.until_decided,
        baseline=analysis.baseline,
        margin=margin.text,
        source=margin.source,
        alpha=ALPHA,
        smallest_p=smallest_p(n),
    )
    return {
        "id": "across-studies",
        "title": f"Across studies: against the tuned {analysis.baseline}",
        "headers": headers,
        "rows": rows,
        "note": note,
    }
