"""Chance level is 1 / the workload's number of classes, wherever a diverged run is scored and
wherever the report says it: a plug-in workload may have any number of classes (the blobs of
``plugin_cases:good`` have three). No training: the plug-in's data is numpy, its model unbuilt."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import report_data

from clrbench.study import choice_tables, tables
from clrbench.study import report as study
from clrbench.study.repeats import per_study
from clrbench.study.resolve import resolve_study
from clrbench.study.select import choose

THREE = 1 / 3  # plugin_cases.CLASSES


@pytest.fixture(scope="module")
def blobs():
    return resolve_study(None, "plugin_cases:good", preset="quick", families=report_data.FAMILIES)


def test_the_chance_level_follows_the_workload(blobs):
    assert blobs.workload.num_classes == 3 and blobs.workload.chance == pytest.approx(THREE)
    assert report_data.study_config().workload.chance == pytest.approx(0.1)  # MNIST: ten digits


def test_a_diverged_confirmation_seed_scores_a_third_on_three_classes(blobs):
    config = blobs.with_changes(confirm_top=1, confirm_seeds=2)
    scores = pd.DataFrame(
        {"family": "constant", "index": [0], "status": "ok", "label": ["constant-t0"]}
        | {"validation_accuracy": [0.9], "score": [0.9], "params": [{"lr": 0.01}]}
    )
    confirmation = pd.DataFrame(
        {"schedule": "constant-t0", "seed": [0, 1], "status": ["ok", "diverged"]}
        | {"final_test_accuracy": [0.8, math.nan]}
    )
    choice = choose(config, scores, confirmation)
    assert choice.means.set_index("label").loc["constant-t0", "mean"] == pytest.approx(
        (0.8 + THREE) / 2
    )


def test_a_diverged_final_run_scores_a_third_in_the_per_study_differences():
    final = pd.DataFrame(
        {"schedule": ["constant"] * 2 + ["clr"] * 2, "seed": [0, 1, 0, 1]}
        | {"status": ["ok", "ok", "ok", "diverged"]}
        | {"final_test_accuracy": [0.9, 0.9, 0.92, math.nan]}
    )
    row = per_study([final], chance=THREE).set_index("family").loc["clr"]
    assert row["mean"] == pytest.approx((0.92 + THREE) / 2)
    assert row["difference"] == pytest.approx((0.02 + THREE - 0.9) / 2)


def test_the_report_says_the_workloads_chance(blobs, tmp_path):
    parts = report_data.study_parts(tmp_path / "final")
    config = blobs.with_changes(confirm_top=1)
    draws = report_data.recorded(config, parts["draws"])
    analysis = study.study_analysis(config, parts["state"], draws)
    assert (
        "A diverged trial scores chance (33.3%)."
        in tables.budget_table(analysis.budget, config.workload.chance)["note"]
    )
    assert "seed scores chance (33.3%)" in choice_tables.confirmation_table(analysis)["note"]
    assert (
        "diverged final run scores chance (33.3%)"
        in (choice_tables.per_study_table(analysis)["note"])
    )
