"""How a study chooses each family's winner: confirmation of the best trials, and the re-check
of a sensitivity sweep that found a better multiplier. Frames in, frames and dicts out, no I/O.

The rule (``StudyConfig.confirm_top`` = K, ``confirm_seeds`` = S):

1. **Candidates**: the K ok trials of a family with the best tuning score (one seed each; ties:
   the earlier trial), best first.
2. **Confirmation**: each candidate re-trained with S fresh seeds, on validation. Its score is
   the mean over those S seeds; the tuning seed's score is left out, since it is what made the
   candidate a candidate (it is biased upwards). A diverged seed scores chance, like a diverged
   trial; a failed run (a crash) is no score. The winner is the candidate with the best mean
   (ties: the better-ranked trial). Cost: K x S runs per family.
3. **Sensitivity check**: the sweep around the winner (every rate x 2^k, its own seeds) may find
   a multiplier whose mean beats x1's by more than its noise: more than ``NOISE_SE`` standard
   errors of the difference of the two means, the seed sd pooled over every ok point of the
   family's sweep. When no point has two ok seeds the noise is unknown and any gain counts.
4. **Re-check**: such a multiplier is re-trained on the S confirmation seeds; if its mean beats
   the winner's confirmation mean it becomes the winner (ties: the winner stays). One re-check
   per family, so the cost is bounded (S runs); the sweep is not repeated around the new winner.

With K = 0 (confirmation off, studies from before it) the winner is the best single-seed trial
and step 4 is skipped; step 3 still flags the sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrbench.study.analysis import select_winners, sweep_points
from clrbench.study.config import octave_label
from clrbench.study.space import scale_rates

if TYPE_CHECKING:
    from clrbench.study.config import StudyConfig


@dataclass(frozen=True)
class Choice:
    """Every choice of one study from the phases done so far: the ``candidates`` per family,
    the confirmation's ``means``, the ``confirmed`` winners, the sweep's ``points`` and its
    ``check``, the multipliers to re-check (``rechecks``), their ``recheck_means`` and the
    final ``winners`` (family -> its winner: label, index, params, validation_accuracy,
    confirmed, confirmation_mean, source, and ``replaced`` after a re-check). The protocol
    decides it after each phase and records the winners in ``study.json``."""

    candidates: dict[str, list[dict[str, Any]]]
    confirmed: dict[str, dict[str, Any]]
    winners: dict[str, dict[str, Any]]
    means: pd.DataFrame | None = None
    points: pd.DataFrame | None = None
    check: pd.DataFrame | None = None
    rechecks: dict[str, dict[str, Any]] = field(default_factory=dict)
    recheck_means: pd.DataFrame | None = None


NOISE_SE = 2.0  # standard errors of the difference beyond which a multiplier is better
CHECK_COLUMNS = ["family", "best_k", "best_mean", "one_mean", "difference", "noise_sd"]
CHECK_COLUMNS += ["threshold", "flagged", "reason"]


def candidates(scores: pd.DataFrame, top: int) -> dict[str, list[dict[str, Any]]]:
    """Per family, its ``top`` ok trials by tuning score, best first (ties: the earlier trial)."""
    chosen: dict[str, list[dict[str, Any]]] = {}
    for family, group in scores.groupby("family", sort=False):
        ok = group[group["status"] == "ok"].sort_values(
            ["validation_accuracy", "index"], ascending=[False, True], kind="stable"
        )
        if len(ok) and top > 0:
            chosen[str(family)] = [
                {"label": r["label"], "index": int(r["index"]), "params": dict(r["params"])}
                | {"validation_accuracy": float(r["validation_accuracy"]), "rank": rank}
                for rank, (_, r) in enumerate(ok.head(top).iterrows())
            ]
    return chosen


def seed_scores(final: pd.DataFrame, labels: dict[str, str], chance: float) -> pd.DataFrame:
    """One row per run of the given labels (label -> family) of a phase's
    ``stats.final_metrics`` frame: ``family, label, seed, status, validation_accuracy, score``
    (ok: its final accuracy; diverged: ``chance``, 1 / the classes; failed: NaN)."""
    final = final[final["schedule"].astype(str).isin(labels)]
    status = final["status"].astype(str).to_numpy()
    accuracy = final["final_test_accuracy"].to_numpy(dtype=np.float64)
    score = np.where(status == "ok", accuracy, np.where(status == "diverged", chance, np.nan))
    label = final["schedule"].astype(str).to_numpy()
    return pd.DataFrame(
        {"family": [labels[x] for x in label], "label": label, "seed": final["seed"].to_numpy()}
        | {"status": status, "validation_accuracy": accuracy, "score": score}
    )


def candidate_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per label: ``runs, scored, diverged, mean, sd`` of its seeds' scores."""
    rows = []
    for (family, label), group in frame.groupby(["family", "label"], sort=False):
        scored = group["score"].dropna()
        rows.append(
            {"family": family, "label": label, "runs": len(group), "scored": len(scored)}
            | {"diverged": int((group["status"] == "diverged").sum())}
            | {"mean": scored.mean() if len(scored) else math.nan}
            | {"sd": scored.std(ddof=1) if len(scored) > 1 else math.nan}
        )
    columns = ["family", "label", "runs", "scored", "diverged", "mean", "sd"]
    return pd.DataFrame(rows, columns=columns)


def confirmed_winners(
    scores: pd.DataFrame, chosen: dict[str, list[dict[str, Any]]], means: pd.DataFrame | None
) -> dict[str, dict[str, Any]]:
    """Per family, the candidate with the best confirmation mean (ties: the better-ranked
    trial). Without confirmation scores (confirmation off or not run yet) a family's winner is
    its best single-seed trial, ``confirmed`` False."""
    winners = {}
    by_label = {} if means is None else means.set_index("label")["mean"].to_dict()
    for family, winner in select_winners(scores).items():
        scored = [
            c for c in chosen.get(family, []) if np.isfinite(by_label.get(c["label"], np.nan))
        ]
        if not scored:
            winners[family] = winner | {"confirmed": False, "confirmation_mean": math.nan}
            continue
        best = max(scored, key=lambda c: (by_label[c["label"]], -c["rank"]))
        winners[family] = {k: best[k] for k in ("label", "index", "validation_accuracy")}
        winners[family] |= {"params": best["params"], "confirmed": True}
        winners[family]["confirmation_mean"] = float(by_label[best["label"]])
    for winner in winners.values():
        winner["source"] = "trials"
    return winners


def pooled_sd(points: pd.DataFrame) -> float:
    """The seed sd pooled over a family's ok sweep points with at least two ok seeds:
    sqrt(sum (n_j - 1) s_j^2 / sum (n_j - 1)); NaN when no point has two."""
    ok = points[points["status"] == "ok"]
    groups = [g["validation_accuracy"].to_numpy() for _, g in ok.groupby("k") if len(g) > 1]
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return math.nan
    return math.sqrt(sum(float(np.var(g, ddof=1)) * (len(g) - 1) for g in groups) / dof)


def _check_row(family: str, points: pd.DataFrame) -> dict[str, Any]:
    by_k = points.groupby("k")
    fully_ok = by_k["status"].agg(lambda s: bool((s == "ok").all()))
    means = by_k["validation_accuracy"].mean()[fully_ok]
    counts = by_k.size()
    row: dict[str, Any] = dict.fromkeys(CHECK_COLUMNS, math.nan) | {"family": family}
    row |= {"flagged": False, "reason": "no ok point"}
    if means.empty:
        return row
    best_k = int(means.idxmax())
    row |= {"best_k": best_k, "best_mean": float(means[best_k]), "noise_sd": pooled_sd(points)}
    if best_k == 0:
        return row | {"reason": "x1 is the best multiplier"}
    if 0 not in means.index:
        return row | {"flagged": True, "reason": "x1 did not finish ok on every seed"}
    row["one_mean"] = float(means[0])
    row["difference"] = row["best_mean"] - row["one_mean"]
    row["threshold"] = NOISE_SE * row["noise_sd"] * math.sqrt(1 / counts[best_k] + 1 / counts[0])
    if not np.isfinite(row["threshold"]):
        return row | {"flagged": row["difference"] > 0, "reason": "noise unknown (one seed)"}
    flagged = bool(row["difference"] > row["threshold"])
    return row | {"flagged": flagged, "reason": "beyond noise" if flagged else "within noise"}


def sensitivity_check(points: pd.DataFrame) -> pd.DataFrame:
    """Per family: the sweep's best multiplier (points whose seeds all finished ok), its mean
    and x1's, their difference, the pooled seed sd, the threshold (``NOISE_SE`` standard errors
    of the difference) and whether the best beats x1 beyond it (``flagged``, with a reason)."""
    rows = [_check_row(str(f), g) for f, g in points.groupby("family", sort=False)]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def recheck_candidates(
    config: StudyConfig, winners: dict[str, dict[str, Any]], check: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """The flagged multipliers to re-train on the confirmation seeds (none when confirmation
    is off): family -> ``label, k, params``."""
    if config.confirm_top == 0:
        return {}
    families = {f.label: f for f in config.families}
    chosen = {}
    for row in check[check["flagged"]].itertuples():
        if row.family in winners and row.family in families:
            k = int(row.best_k)
            params = scale_rates(families[row.family].name, winners[row.family]["params"], 2.0**k)
            chosen[row.family] = {"label": octave_label(row.family, k), "k": k, "params": params}
    return chosen


def rechecked_winners(
    winners: dict[str, dict[str, Any]],
    rechecks: dict[str, dict[str, Any]],
    means: pd.DataFrame | None,
) -> dict[str, dict[str, Any]]:
    """The winners after the re-check: a re-checked multiplier whose mean over the confirmation
    seeds beats the winner's confirmation mean replaces it (``replaced``: the trial it replaced)."""
    by_label = {} if means is None else means.set_index("label")["mean"].to_dict()
    result = dict(winners)
    for family, candidate in rechecks.items():
        mean = by_label.get(candidate["label"], math.nan)
        old = winners[family]
        if mean > old["confirmation_mean"]:  # False when either is NaN: the winner stays
            result[family] = {"label": candidate["label"], "index": old["index"]}
            result[family] |= {"validation_accuracy": math.nan, "params": candidate["params"]}
            result[family] |= {"confirmed": True, "confirmation_mean": float(mean)}
            result[family] |= {"source": "re-check", "replaced": old["label"]}
    return result


def choose(
    config: StudyConfig,
    scores: pd.DataFrame,
    confirmation: pd.DataFrame | None = None,
    sweep: pd.DataFrame | None = None,
    recheck: pd.DataFrame | None = None,
) -> Choice:
    """Every choice of one study from the phases done so far (each phase's
    ``stats.final_metrics`` frame; None: not yet). The protocol calls it after each phase and
    records the winners; the report reads those and shows the rest (means, sweep, check)."""
    chosen = candidates(scores, config.confirm_top)
    labels = {c["label"]: family for family, group in chosen.items() for c in group}
    chance = config.workload.chance
    means = None
    if confirmation is not None and labels:
        means = candidate_means(seed_scores(confirmation, labels, chance))
    confirmed = confirmed_winners(scores, chosen, means)
    choice = Choice(chosen, confirmed, confirmed, means)
    if sweep is None or not confirmed:
        return choice
    octaves = {octave_label(f, k): (f, k) for f in confirmed for k in config.octaves}
    points = sweep_points(sweep, octaves)
    check = sensitivity_check(points)
    rechecks = recheck_candidates(config, confirmed, check)
    choice = replace(choice, points=points, check=check, rechecks=rechecks)
    if recheck is not None and rechecks:
        relabel = {c["label"]: family for family, c in rechecks.items()}
        recheck_means = candidate_means(seed_scores(recheck, relabel, chance))
        winners = rechecked_winners(confirmed, rechecks, recheck_means)
        choice = replace(choice, recheck_means=recheck_means, winners=winners)
    return choice
