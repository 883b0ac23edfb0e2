"""The grid's families across workloads (issue 36): do the workloads rank them alike, and how
close is each to the best family of each workload (the performance profile)?

- A family's score on a workload: the mean final test accuracy of its winners' final runs over
  every study and final seed (a diverged run scores chance, ``CHANCE``; a failed one is left
  out), from each study's ``stats.final_metrics`` frames.
- Kendall's W over the families (``clrbench.across.analysis.rank_agreement``: mid-ranks for
  ties with the tie correction, Friedman's chi² = m (n − 1) W; fewer than 2 workloads or 2
  families common to all: "cannot test"; every workload tying every family: "undefined").
- The performance profile over the families (Dolan & Moré 2002), of the test *error*
  (1 − accuracy): a family's ratio on a workload is its error over the best family's error
  there, so 1 is the best family and rho(tau) the share of workloads within tau of the best.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clrbench.across.analysis import (
    Agreement,
    Profile,
    common_schedules,
    performance_profile,
    rank_agreement,
)
from clrbench.across.report import records
from clrbench.store import atomic

CHANCE = 0.1  # the built-in workloads' 10 classes (a study's own: its workload's ``chance``)


@dataclass(frozen=True)
class GridAcross:
    """The families' scores per workload, their rank agreement and their profile."""

    scores: pd.DataFrame  # workload, family, mean, runs
    agreement: Agreement
    profile: Profile
    profiled: list[str]  # the families in every workload


def family_scores(
    finals: Mapping[str, list[pd.DataFrame]], chances: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """``workload, family, mean, runs`` from each workload's studies' final runs (columns
    ``schedule, status, final_test_accuracy``); a diverged run scores its workload's chance
    (``chances``, default ``CHANCE``)."""
    rows = []
    for workload, frames in finals.items():
        if not frames:
            continue
        runs = pd.concat(frames, ignore_index=True)
        status = runs["status"].astype(str)
        accuracy = runs["final_test_accuracy"].astype(np.float64)
        chance = (chances or {}).get(workload, CHANCE)
        score = accuracy.where(status == "ok", np.where(status == "diverged", chance, np.nan))
        runs = runs.assign(score=score, family=runs["schedule"].astype(str)).dropna(
            subset=["score"]
        )
        for family, group in runs.groupby("family", sort=False):
            rows.append({"workload": workload, "family": family})
            rows[-1] |= {"mean": float(group["score"].mean()), "runs": len(group)}
    return pd.DataFrame(rows, columns=["workload", "family", "mean", "runs"])


def across_grid(scores: pd.DataFrame) -> GridAcross:
    """Kendall's W and the performance profile of the families' ``scores``."""
    means = scores.rename(columns={"family": "schedule"})[["workload", "schedule", "mean"]]
    agreement = rank_agreement(means)
    workloads = list(dict.fromkeys(means["workload"]))
    common, _ = common_schedules(
        {w: means.loc[means["workload"] == w, "schedule"].tolist() for w in workloads}
    )
    shared = means[means["schedule"].isin(common)]
    error = shared.assign(steps=1.0 - shared["mean"])[["workload", "schedule", "steps"]]
    return GridAcross(scores, agreement, performance_profile(error), common)


GRID_JSON = "grid_across.json"
GRID_MD = "grid_across.md"


def grid_document(grid: GridAcross) -> dict[str, Any]:
    """``grid_across.json``: the families' scores, Kendall's W and the profile's scores."""
    agreement = grid.agreement
    return {
        "format": "clrbench-grid-across/1",
        "workloads": agreement.workloads,
        "families_ranked": agreement.schedules,
        "left_out": agreement.left_out,
        "kendalls_w": {"w": agreement.w, "chi2": agreement.chi2, "df": agreement.df}
        | {"p_value": agreement.p_value, "status": agreement.status},
        "scores": records(grid.scores),
        "ranks": records(agreement.ranks.rename(columns={"schedule": "family"})),
        "profile": records(grid.profile.scores.rename(columns={"schedule": "family"})),
    }


def _markdown(grid: GridAcross) -> str:
    """The grid across workloads in a few lines and one table (families by profile score)."""
    agreement = grid.agreement
    if agreement.w is None:
        w_line = f"Kendall's W over the families: {agreement.status}."
    else:
        w_line = (
            f"Kendall's W over the {len(agreement.schedules)} families common to the "
            f"{len(agreement.workloads)} workloads: W = {agreement.w:.3f} (Friedman chi² = "
            f"{agreement.chi2:.2f}, {agreement.df} df, p = {agreement.p_value:.3g}); "
            "1 = every workload ranks them alike, 0 = no agreement."
        )
    ranks = agreement.ranks.pivot(index="schedule", columns="workload", values="rank")
    scores = grid.profile.scores.set_index("schedule")["score"]
    lines = ["# The grid across workloads", "", w_line, "",
             "Performance profile of the test error (1 − accuracy): a family's score is the "
             "area under rho(tau), the share of workloads on which its error is within tau "
             "times the best family's, over [1, tau_max], scaled to 0–1 (1: best everywhere).",
             "", "| Family | Profile score | " + " | ".join(f"Rank: {w}" for w in ranks.columns)
             + " |", "|---|---:|" + "---:|" * len(ranks.columns)]  # fmt: skip
    for family in scores.sort_values(ascending=False).index:
        cells = [f"{ranks.loc[family, w]:g}" if family in ranks.index else "–" for w in ranks]
        lines.append(f"| {family} | {scores[family]:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_grid_across(grid: GridAcross, out: str | Path) -> dict[str, Path]:
    """Write OUT/grid_across.json and OUT/grid_across.md (atomically); returns their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(grid_document(grid), indent=2, allow_nan=False) + "\n"
    atomic.write_text(folder / GRID_JSON, text)
    atomic.write_text(folder / GRID_MD, _markdown(grid))
    return {"json": folder / GRID_JSON, "md": folder / GRID_MD}
