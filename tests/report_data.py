"""A study's phases built without training, for the study report's tests; reading a page's
tables back.

The trials are the real planner's (``plan_trials``); their outcomes, the sensitivity points and
the split are set here; the final runs are a synthetic results folder written through the real
store (``benchmarks/synthetic.py``), two of its schedules relabelled as the zero-budget arm.
"""

from __future__ import annotations

import math
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import load_synthetic

from clrbench.store.results import Results, load_results
from clrbench.study.config import StudyConfig, octave_label
from clrbench.study.presets import preset
from clrbench.study.protocol import plan_trials
from clrbench.study.select import choose

FAMILIES = ["constant", "clr-iter", "sine-exp"]
# family -> (status, final validation accuracy) of its four trials; sine-exp never finishes ok
OUTCOMES = {
    "constant": [("ok", 0.95), ("ok", 0.97), ("diverged", math.nan), ("ok", 0.96)],
    "clr-iter": [("ok", 0.975), ("failed", math.nan), ("ok", 0.98), ("ok", 0.97)],
    "sine-exp": [("diverged", math.nan)] * 4,
}
# the zero-budget arm: synthetic schedules standing in for lr-find's two final schedules
ZERO_BUDGET = {"step": "lr-find-constant", "one-cycle": "lr-find-clr"}
STATE = {
    "split": {
        "dataset": "mnist",
        "train_examples": 50_000,
        "validation_examples": 10_000,
        "split_seed": 7,
        "validation_sha256": "ab" * 32,
        "dataset_md5": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
    },
    "lr_find": {"base_lr": 0.0123, "max_lr": 0.234},
    "phases": {},
    "studies": [{"index": 0, "folder": ".", "seeds": {}, "phases": {"trials": {"trained": 12}}}],
}


def study_config() -> StudyConfig:
    """The quick study's protocol (4 trials per family, octaves -3..3) on three families."""
    return StudyConfig.from_dict(preset("quick")).select(FAMILIES)


def trial_scores(config: StudyConfig) -> pd.DataFrame:
    """``analysis.study.trial_scores``'s frame for the planned trials and OUTCOMES."""
    rows = []
    for trial in plan_trials(config):
        status, accuracy = OUTCOMES[trial.family][trial.index]
        score = accuracy if status == "ok" else (0.1 if status == "diverged" else math.nan)
        rows.append(
            {"family": trial.family, "index": trial.index, "label": trial.label}
            | {"status": status, "validation_accuracy": accuracy, "score": score}
            | {"params": dict(trial.params)}
        )
    return pd.DataFrame(rows)


def sensitivity_points(shapes: dict[str, list[float]], seeds: int = 2) -> pd.DataFrame:
    """One row per (family, k, seed): the mean accuracy at k = -3..3 from ``shapes`` (NaN:
    every seed diverged), seeds spread by ±0.0005 around it."""
    rows = []
    for family, means in shapes.items():
        for k, mean in zip(range(-3, 4), means, strict=True):
            for seed in range(seeds):
                status = "diverged" if math.isnan(mean) else "ok"
                accuracy = mean + (0.0005 if seed % 2 else -0.0005)
                rows.append((family, k, seed, status, accuracy))
    points = pd.DataFrame(rows, columns=["family", "k", "seed", "status", "validation_accuracy"])
    return points.assign(multiplier=2.0 ** points["k"])


# constant: flat over 2 octaves around x1; clr-iter flat over ~4, diverged at x8
SHAPES = {
    "constant": [0.90, 0.95, 0.979, 0.980, 0.979, 0.96, 0.90],
    "clr-iter": [0.970, 0.9818, 0.9825, 0.983, 0.9826, 0.9815, math.nan],
}


def _relabelled(results: Results, names: dict[str, str]) -> Results:
    frames = {}
    for name in results.FRAMES:
        frame = getattr(results, name).copy()
        frame["schedule"] = frame["schedule"].cat.rename_categories(
            lambda label: names.get(label, label)
        )
        frames[name] = frame
    return replace(results, **frames)


def final_results(folder: Path) -> Results:
    """Final runs of the two winners (3 seeds) and of the zero-budget arm, on test."""
    labels = ("constant", "clr-iter", *ZERO_BUDGET)
    load_synthetic().write_synthetic_results(folder, labels, seeds=3, epochs=2, train_size=1280)
    return _relabelled(load_results(folder), ZERO_BUDGET)


def sweep_frame(points: pd.DataFrame) -> pd.DataFrame:
    """``stats.final_metrics``'s columns for the sweep runs of ``points``."""
    pairs = zip(points["family"], points["k"], strict=True)
    return pd.DataFrame(
        {
            "schedule": [octave_label(family, k) for family, k in pairs],
            "seed": points["seed"],
            "status": points["status"],
            "final_test_accuracy": points["validation_accuracy"],
        }
    )


def study_parts(folder: Path) -> dict[str, Any]:
    """The arguments of ``report.study.study_analysis`` for a complete constructed study (one
    study, no confirmation runs: the winners are the best trials)."""
    config = study_config()
    draw = {"scores": trial_scores(config), "confirmation": None, "recheck": None}
    draw |= {"sweep": sweep_frame(sensitivity_points(SHAPES)), "final": final_results(folder)}
    return {"config": config, "state": STATE, "draws": recorded(config, [draw])}


def recorded(config: StudyConfig, draws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The draws with the winners their protocol would have recorded in study.json: its own
    rule (``choose``) on the phases it ran."""
    return [
        draw
        | {
            "winners": choose(
                config.draw(i),
                draw["scores"],
                draw.get("confirmation"),
                draw.get("sweep"),
                draw.get("recheck"),
            ).winners
        }  # fmt: skip
        for i, draw in enumerate(draws)
    ]


class Tables(HTMLParser):
    """Every <table> of a page as {id of the preceding heading: [[cell text, ...], ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.heading, self.rows, self.cell = "", None, None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.heading = dict(attrs).get("id", "")
        elif tag == "table":
            self.rows = self.tables.setdefault(self.heading, [])
        elif tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif tag in ("td", "th") and self.rows is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None
        elif tag == "table":
            self.rows = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
