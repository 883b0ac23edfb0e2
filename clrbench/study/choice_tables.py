"""The study report's tables of how winners were chosen and of the repeated studies: the
confirmation of the best trials, the sensitivity re-check, every study's winners and the
headline across studies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from clrbench.study import figures as study_figures
from clrbench.study.repeats import baseline_wins, smallest_p
from clrbench.study.select import NOISE_SE
from clrbench.text import format_p, pct, percent, pp

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
    note = (
        f"Confirmed winners: the {config.confirm_top} best ok trials of each family (by their "
        f"one tuning-seed score) re-trained with {config.confirm_seeds} fresh seeds "
        f"({seeds[0]}..{seeds[-1]} in study 0) on validation, {config.confirm_top} × "
        f"{config.confirm_seeds} = {config.confirm_top * config.confirm_seeds} runs per family. "
        "The winner is the candidate with the best mean over those seeds; the tuning seed's "
        "score is left out, since it is what made the candidate (biased upwards). A diverged "
        f"seed scores chance ({percent(config.workload.chance)}), a failed run no score; ties: "
        "the better-ranked trial."
    )
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
    note = (
        f"The sensitivity sweep ({config.sensitivity_seeds} seeds per multiplier) around each "
        f"confirmed winner. Beyond noise: the best multiplier's mean exceeds ×1's by more than "
        f"{NOISE_SE:g} standard errors of the difference, the seed sd pooled over the family's "
        "ok sweep points (with one seed per point the noise is unknown and any gain counts). "
        f"Such a multiplier is re-trained on the {config.confirm_seeds} confirmation seeds and "
        "replaces the winner if its mean beats the winner's confirmation mean (one re-check per "
        "family; the sweep is not repeated around the new winner)."
        + ("" if config.confirm_top else " Confirmation is off in this study: no re-check.")
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
    note = (
        f"Each study tuned every family independently (its own Sobol scramble and selection "
        f"seeds) and re-ran its winners on the same {config.seeds} final seeds "
        f"({config.first_seed}..{config.first_seed + config.seeds - 1}), on test. Difference: "
        f"the mean over those seeds of (family − {analysis.baseline}), paired by seed; a "
        f"diverged final run scores chance ({percent(config.workload.chance)}), a failed one is "
        "left out. Best: the study's "
        "highest mean (ties: each)."
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
    note = (
        f"Over {n} independent stud{'y' if n == 1 else 'ies'} ({design}): the pre-registered "
        "primary test (docs/concepts/protocol.md). Difference: the mean over studies and final "
        f"seeds of (family − that study's tuned {analysis.baseline}) on the same seed; its "
        "standard error "
        + (
            "from the two-way ANOVA of the studies × seeds table, since the seeds are shared "
            "(their effect does not shrink with more studies)"
            if design.startswith("same")
            else "from the spread of the studies' means (t over studies)"
        )
        + f". Outcome at α = 0.05, Holm over the families, margin {margin.text} "
        f"({margin.source}): better or worse when p (Holm) is below α (beyond the margin when "
        "the 95% CI lies outside it), equivalent when the two one-sided tests put the 90% CI "
        "inside the margin (Holm), else undecided with the studies that would likely decide "
        "it. P(better): the share of (study, seed) pairs on which the family beats the "
        "baseline (ties ½; studies weighted equally), with a stratified bootstrap 95% CI. "
        f"Range: min–max of the studies' differences. Studies +/−: the signs (an exact sign "
        f"test over studies, in summary.json, can give no p below {format_p(smallest_p(n))} "
        f"with {n} stud{'y' if n == 1 else 'ies'}). At least 2 studies are needed."
    )
    return {
        "id": "across-studies",
        "title": f"Across studies: against the tuned {analysis.baseline}",
        "headers": headers,
        "rows": rows,
        "note": note,
    }
