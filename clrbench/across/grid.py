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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clrbench.across.analysis import (
    Agreement,
    Profile,
    common_schedules,
    performance_profile,
    rank_agreement,
)

CHANCE = 0.1  # the built-in workloads' 10 classes (clrbench.study.analysis.CHANCE)


@dataclass(frozen=True)
class GridAcross:
    """The families' scores per workload, their rank agreement and their profile."""

    scores: pd.DataFrame  # workload, family, mean, runs
    agreement: Agreement
    profile: Profile
    profiled: list[str]  # the families in every workload


def family_scores(finals: Mapping[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """``workload, family, mean, runs`` from each workload's studies' final runs (columns
    ``schedule, status, final_test_accuracy``)."""
    rows = []
    for workload, frames in finals.items():
        if not frames:
            continue
        runs = pd.concat(frames, ignore_index=True)
        status = runs["status"].astype(str)
        accuracy = runs["final_test_accuracy"].astype(np.float64)
        score = accuracy.where(status == "ok", np.where(status == "diverged", CHANCE, np.nan))
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
