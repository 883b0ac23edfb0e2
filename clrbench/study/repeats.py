"""The headline of repeated studies: each family against the tuned constant, per study and
across studies, so that its uncertainty includes tuning luck and not only seed noise.

Per study (its winners re-trained on the final seeds, the same seeds in every study): a run's
score is its final test accuracy when ok, chance (1 / the workload's classes) when it diverged
(a diverged winner is a real outcome of that tuning and counts against it), none when it failed
(a crash).
A family's *difference* in a study is the mean over the seeds scored for both it and the
baseline of (its score - the baseline's score): paired on the final seeds. The family with the
highest mean score *wins* the study (ties: a win for each tied family).

Across studies, the verdict is the pre-registered primary test (docs/concepts/protocol.md,
``clrbench.analysis.protocol``): the grand mean of the (study × seed) paired differences with
its standard error (the same final seeds in every study: crossed, two-way ANOVA; seeds drawn per
study: nested, the t over the studies' means), decided by ``clrbench.analysis.decide`` at the
workload's margin — better / worse / equivalent within ±margin / undecided with how many more
studies would likely decide it — Holm over the families. Beside it: the median difference, its
min-max spread, the wins, the probability of improvement over (study, seed) pairs with its
stratified bootstrap interval, and the exact sign test over studies (Holm; 3 studies give no p
below 0.25, so it no longer gives the verdict). Without the final runs (``finals``), each
study's mean difference is one cell (nested). A difference of exactly 0 is neither sign.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from clrbench.analysis import decide
from clrbench.analysis.improvement import probability_of_improvement
from clrbench.analysis.protocol import FIRST_LOOK, look_level, study_estimate
from clrbench.analysis.stats import ALPHA, holm

MIN_STUDIES = 3  # the sign test's
ACROSS_COLUMNS = ["family", "studies", "median", "low", "high", "mean", "ci_low", "ci_high"]
ACROSS_COLUMNS += ["wins", "positive", "negative", "p_sign", "p_holm", "verdict"]
DECIDED_COLUMNS = ["outcome", "margin", "seeds_design", "estimate", "se", "df", "ci90_low"]
DECIDED_COLUMNS += ["ci90_high", "p_difference", "p_difference_holm", "p_equivalence"]
DECIDED_COLUMNS += ["p_equivalence_holm", "beyond_margin", "more_studies", "cannot_test"]
DECIDED_COLUMNS += ["p_improvement", "p_improvement_low", "p_improvement_high", "pairs"]


def run_scores(final: pd.DataFrame, chance: float) -> pd.Series:
    """Each final run's score: ok -> its accuracy, diverged -> ``chance`` (1 / the
    classes), failed -> NaN."""
    status = final["status"].astype(str)
    accuracy = final["final_test_accuracy"].astype(np.float64)
    return accuracy.where(status == "ok", np.where(status == "diverged", chance, np.nan))


def study_table(final: pd.DataFrame, study: int, baseline: str, chance: float) -> pd.DataFrame:
    """One study's rows: ``study, family, runs, scored, diverged, mean, difference, paired,
    best`` from its final runs (``stats.final_metrics`` columns: schedule, seed, status,
    final_test_accuracy), one per family present."""
    frame = final.assign(score=run_scores(final, chance), family=final["schedule"].astype(str))
    by_seed = frame.pivot_table(index="seed", columns="family", values="score", aggfunc="first")
    rows = []
    for family, group in frame.groupby("family", sort=False):
        scored = group["score"].dropna()
        row = {"study": study, "family": family, "runs": len(group), "scored": len(scored)}
        row |= {"diverged": int((group["status"].astype(str) == "diverged").sum())}
        row |= {"mean": scored.mean() if len(scored) else math.nan}
        row |= {"difference": math.nan, "paired": 0}
        if family == baseline:
            row |= {"difference": 0.0 if len(scored) else math.nan, "paired": len(scored)}
        elif baseline in by_seed.columns and family in by_seed.columns:
            both = by_seed[[family, baseline]].dropna()
            row["paired"] = len(both)
            if len(both):
                row["difference"] = float((both[family] - both[baseline]).mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table.assign(best=pd.Series(dtype=bool))
    top = table["mean"].max()
    return table.assign(best=np.isfinite(top) & (table["mean"] == top))


def per_study(
    finals: list[pd.DataFrame], baseline: str = "constant", *, chance: float
) -> pd.DataFrame:
    """Every study's rows (``study_table``), study by study; a diverged run scores ``chance``."""
    tables = [study_table(final, i, baseline, chance) for i, final in enumerate(finals)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def sign_test(differences: np.ndarray) -> tuple[int, int, float]:
    """Positive and negative counts and the exact two-sided sign-test p (zeros dropped; no
    non-zero difference: p = 1)."""
    positive, negative = int((differences > 0).sum()), int((differences < 0).sum())
    if positive + negative == 0:
        return positive, negative, 1.0
    p = scipy_stats.binomtest(positive, positive + negative, 0.5).pvalue
    return positive, negative, float(p)


def _family_row(family: str, group: pd.DataFrame, wins: int) -> dict[str, Any]:
    """The descriptive columns: spread over studies, wins, the sign test (p before Holm)."""
    values = group["difference"].dropna().to_numpy(dtype=np.float64)
    row: dict[str, Any] = dict.fromkeys(ACROSS_COLUMNS, math.nan)
    row |= {"family": family, "studies": int(values.size), "wins": wins}
    row |= {"positive": 0, "negative": 0}
    if values.size == 0:
        return row
    row |= {"median": float(np.median(values)), "low": float(values.min())}
    row |= {"high": float(values.max()), "mean": float(values.mean())}
    row["positive"], row["negative"], p = sign_test(values)
    row["p_sign"] = p if values.size >= MIN_STUDIES else math.nan
    return row


def _scores_by_seed(final: pd.DataFrame, family: str, chance: float) -> pd.Series:
    """A study's final scores of one family by seed (failed runs left out)."""
    rows = final[final["schedule"].astype(str) == family]
    return pd.Series(run_scores(rows, chance).to_numpy(), index=rows["seed"].to_numpy()).dropna()


def paired_table(
    finals: list[pd.DataFrame], family: str, baseline: str, chance: float
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The (studies × seeds) table of paired differences (family − baseline on the same seed;
    columns: every seed any study scored, NaN where a study has no pair), and per study the
    two score arrays on its paired seeds (the strata of the probability of improvement)."""
    pairs = []
    for final in finals:
        a, b = _scores_by_seed(final, family, chance), _scores_by_seed(final, baseline, chance)
        common = a.index.intersection(b.index).sort_values()
        pairs.append((common, a[common].to_numpy(), b[common].to_numpy()))
    seeds = sorted({int(seed) for common, _, _ in pairs for seed in common})
    table = np.full((len(pairs), len(seeds)), np.nan)
    column = {seed: j for j, seed in enumerate(seeds)}
    for i, (common, a, b) in enumerate(pairs):
        table[i, [column[int(seed)] for seed in common]] = a - b
    return table, [(a, b) for _, a, b in pairs]


def same_seeds(finals: list[pd.DataFrame]) -> bool:
    """Whether every study re-ran its winners on the same final seeds (crossed design)."""
    sets = [frozenset(final["seed"].tolist()) for final in finals]
    return len(set(sets)) <= 1


def across_studies(
    table: pd.DataFrame,
    baseline: str = "constant",
    finals: list[pd.DataFrame] | None = None,
    margin: float | None = None,
    level: float = ALPHA,
    *,
    chance: float | None = None,
) -> pd.DataFrame:
    """Per family other than the baseline, across studies: ``studies`` (with a difference),
    ``median, low, high`` (min-max), ``mean`` (of the studies' differences), ``wins``,
    sign counts, ``p_sign`` and ``p_holm`` (the sign test, Holm), and the primary test's
    decided answer: ``ci_low, ci_high`` (its 95% interval) and ``DECIDED_COLUMNS``, with
    ``verdict`` in words. ``finals``: each study's final runs (``stats.final_metrics``
    columns), for the (study × seed) table, a diverged run scoring ``chance`` (1 / the
    workload's classes: required with ``finals``); without them each study is one cell.
    ``level``: the test's level (the sequential rule's spent alpha at a look)."""
    if finals is not None and chance is None:
        raise ValueError("across_studies: give the workload's chance level with its finals")
    if table.empty:
        return pd.DataFrame(columns=ACROSS_COLUMNS + DECIDED_COLUMNS)
    wins = table[table["best"]].groupby("family")["study"].nunique().to_dict()
    groups = [(str(f), g) for f, g in table.groupby("family", sort=False) if f != baseline]
    across = pd.DataFrame(
        [_family_row(family, group, int(wins.get(family, 0))) for family, group in groups],
        columns=ACROSS_COLUMNS,
    )
    across["p_holm"] = holm(across["p_sign"].to_numpy(dtype=np.float64))
    crossed = finals is not None and same_seeds(finals)
    estimates: dict[str, decide.Estimate] = {}
    strata: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for family, group in groups:
        if finals is None:
            cells = group["difference"].dropna().to_numpy(dtype=np.float64)[:, None]
            strata[family] = []
        else:
            assert chance is not None  # checked above
            cells, strata[family] = paired_table(finals, family, baseline, chance)
        estimates[family] = study_estimate(cells, fresh_seeds=not crossed)
    verdicts = decide.decide(estimates, margin, "studies", levels=dict.fromkeys(estimates, level))
    design = "same final seeds in every study" if crossed else "final seeds drawn per study"
    if finals is None:
        design = "one mean difference per study"
    decided = [
        _decided(verdicts[f], estimates[f], probability_of_improvement(strata[f]), design)
        for f, _ in groups
    ]
    return across.assign(**pd.DataFrame(decided, index=across.index).to_dict("series"))


def _decided(
    verdict: decide.Verdict, estimate: decide.Estimate, improvement: Any, design: str
) -> dict[str, Any]:
    """One family's primary-test columns."""
    return {
        "outcome": verdict.outcome, "margin": verdict.margin, "seeds_design": design,
        "estimate": estimate.difference, "se": estimate.se, "df": estimate.df,
        "ci_low": verdict.ci95[0], "ci_high": verdict.ci95[1],
        "ci90_low": verdict.ci90[0], "ci90_high": verdict.ci90[1],
        "p_difference": verdict.p_difference, "p_difference_holm": verdict.p_difference_holm,
        "p_equivalence": verdict.p_equivalence,
        "p_equivalence_holm": verdict.p_equivalence_holm,
        "beyond_margin": verdict.beyond_margin, "more_studies": verdict.more_needed,
        "cannot_test": verdict.cannot_test,
        "p_improvement": improvement.probability, "p_improvement_low": improvement.low,
        "p_improvement_high": improvement.high, "pairs": improvement.pairs,
        "verdict": decide.words(verdict),
    }  # fmt: skip


def sequential_across(
    table: pd.DataFrame,
    baseline: str,
    finals: list[pd.DataFrame],
    margin: float | None,
    max_studies: int,
    *,
    chance: float,
) -> pd.DataFrame:
    """:func:`across_studies` under the sequential rule of ``--until-decided``: a look after
    each study from the ``FIRST_LOOK``-th, at the alpha spent since the previous look
    (``clrbench.analysis.protocol.look_level``); each family keeps the first outcome it was
    decided with (``decided_at``: the studies then; ``level``: that look's level); one never
    decided shows the last look."""
    done = len(finals)
    if done < min(FIRST_LOOK, max_studies):
        rows = across_studies(table, baseline, finals, margin, chance=chance)
        waiting = f"undecided: the first look is after {min(FIRST_LOOK, max_studies)} studies"
        return rows.assign(outcome="undecided", verdict=waiting, decided_at=math.nan, level=0.0)
    kept: dict[str, pd.Series] = {}
    last = pd.DataFrame()
    for studies in range(min(FIRST_LOOK, max_studies), done + 1):
        level = look_level(studies, max_studies)
        part = table[table["study"] < studies] if len(table) else table
        last = across_studies(part, baseline, finals[:studies], margin, level, chance=chance)
        last = last.assign(decided_at=float(studies), level=level)
        for _, row in last.iterrows():
            if row["family"] not in kept and row["outcome"] != "undecided":
                kept[row["family"]] = row
    rows = [kept.get(row["family"], row) for _, row in last.iterrows()]
    frame = pd.DataFrame(rows).reset_index(drop=True)
    undecided = frame["outcome"] == "undecided"
    frame.loc[undecided, "decided_at"] = math.nan
    return frame


def all_decided(across: pd.DataFrame) -> bool:
    """Whether every family has an outcome other than undecided (and there is one)."""
    return len(across) > 0 and bool((across["outcome"] != "undecided").all())


def baseline_wins(table: pd.DataFrame, baseline: str = "constant") -> int:
    """The studies the baseline won (ties: a win for it too)."""
    if table.empty:
        return 0
    return int(table[table["best"] & (table["family"] == baseline)]["study"].nunique())


def smallest_p(studies: int) -> float:
    """The smallest two-sided sign-test p that ``studies`` studies can give: 2 / 2^n."""
    return min(1.0, 2.0 * 0.5**studies)
