"""The headline of repeated studies: each family against the tuned constant, per study and
across studies, so that its uncertainty includes tuning luck and not only seed noise.

Per study (its winners re-trained on the final seeds, the same seeds in every study): a run's
score is its final test accuracy when ok, chance (1 / the workload's classes) when it diverged
(a diverged winner is a real outcome of that tuning and counts against it), none when it failed
(a crash).
A family's *difference* in a study is the mean over the seeds scored for both it and the
baseline of (its score - the baseline's score): paired on the final seeds. The family with the
highest mean score *wins* the study (ties: a win for each tied family).

Across studies: the median difference, its min-max spread, the mean with a 95% t-interval over
studies (each study's difference carries its tuning luck and its seed noise, so their spread
measures both), the wins, and an exact two-sided sign test of "the median difference is 0"
(Holm over the families), which gives the verdict; where it is not significant but the
t-interval excludes 0, the verdict says so (few studies cannot make the sign test significant:
3 give no p below 0.25). Fewer than ``MIN_STUDIES`` studies: cannot test. A difference of
exactly 0 is neither sign (dropped from the sign test); when every difference is 0 the answer
is "no difference in any study" (p = 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from clrbench.analysis.stats import ALPHA, CONFIDENCE, holm
from clrbench.text import plural

MIN_STUDIES = 3
ACROSS_COLUMNS = ["family", "studies", "median", "low", "high", "mean", "ci_low", "ci_high"]
ACROSS_COLUMNS += ["wins", "positive", "negative", "p_sign", "p_holm", "verdict"]


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


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    if values.size < 2:
        return math.nan, math.nan
    half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, values.size - 1) * values.std(ddof=1)
    half /= math.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)


def _family_row(family: str, group: pd.DataFrame, wins: int) -> dict[str, Any]:
    values = group["difference"].dropna().to_numpy(dtype=np.float64)
    row: dict[str, Any] = dict.fromkeys(ACROSS_COLUMNS, math.nan)
    row |= {"family": family, "studies": int(values.size), "wins": wins}
    row |= {"positive": 0, "negative": 0, "verdict": "no study to compare"}
    if values.size == 0:
        return row
    row |= {"median": float(np.median(values)), "low": float(values.min())}
    row |= {"high": float(values.max()), "mean": float(values.mean())}
    row["positive"], row["negative"], p = sign_test(values)
    if values.size < MIN_STUDIES:
        studies = plural(values.size, "study", "studies")
        return row | {"verdict": f"cannot test: {studies} (at least {MIN_STUDIES} needed)"}
    row["ci_low"], row["ci_high"] = _t_interval(values)
    row["p_sign"] = p
    row["verdict"] = None if (values != 0).any() else "no difference in any study"
    return row


def across_studies(table: pd.DataFrame, baseline: str = "constant") -> pd.DataFrame:
    """Per family other than the baseline, across studies: ``studies`` (with a difference),
    ``median, low, high`` (min-max), ``mean, ci_low, ci_high`` (95% t over studies),
    ``wins`` (studies it won), sign counts, ``p_sign``, ``p_holm`` and ``verdict``."""
    if table.empty:
        return pd.DataFrame(columns=ACROSS_COLUMNS)
    wins = table[table["best"]].groupby("family")["study"].nunique().to_dict()
    rows = [
        _family_row(str(family), group, int(wins.get(family, 0)))
        for family, group in table.groupby("family", sort=False)
        if family != baseline
    ]
    across = pd.DataFrame(rows, columns=ACROSS_COLUMNS)
    across["p_holm"] = holm(across["p_sign"].to_numpy(dtype=np.float64))
    across["verdict"] = [
        _verdict(r.p_holm, r.median, r.ci_low, r.ci_high) if r.verdict is None else r.verdict
        for r in across.itertuples()
    ]
    return across


def _verdict(p_holm: float, median: float, ci_low: float, ci_high: float) -> str:
    """The sign test decides; when it does not, a t-interval over studies that excludes 0 is
    named (a consistent sign the test could not confirm, e.g. 3 studies: no p below 0.25)."""
    if p_holm < ALPHA:
        return "better" if median > 0 else "worse"
    if ci_low > 0 or ci_high < 0:
        side = "above" if ci_low > 0 else "below"
        return f"sign test not significant; t-interval over studies {side} 0"
    return "no difference beyond tuning luck and seed noise"


def interval_excludes_zero(across: pd.DataFrame) -> pd.DataFrame:
    """The families whose 95% t-interval over studies lies wholly above or below 0."""
    return across[(across["ci_low"] > 0) | (across["ci_high"] < 0)]


def baseline_wins(table: pd.DataFrame, baseline: str = "constant") -> int:
    """The studies the baseline won (ties: a win for it too)."""
    if table.empty:
        return 0
    return int(table[table["best"] & (table["family"] == baseline)]["study"].nunique())


def smallest_p(studies: int) -> float:
    """The smallest two-sided sign-test p that ``studies`` studies can give: 2 / 2^n."""
    return min(1.0, 2.0 * 0.5**studies)
