"""The study report (``clrbench.study.report*``) on a study's phases built without training
(``report_data``): its tables, its generated answers, the document, the sensitivity figure."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import report_data
from report_data import Tables

from clrbench import __version__
from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.study import choice_tables
from clrbench.study import figures as study_figures
from clrbench.study import prose as study_prose
from clrbench.study import report as study
from clrbench.study import tables as study_tables
from clrbench.study.analysis import flatness, sensitivity_curve


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    parts = report_data.study_parts(tmp_path_factory.mktemp("study") / "final")
    return study.study_analysis(**parts)


@pytest.fixture(scope="module")
def written(analysis, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study-report")
    return study.write_study(folder, analysis, folder / "report")


def test_winners_are_chosen_on_validation_and_the_outcomes_counted(analysis):
    table = study_tables.winners_table(analysis)
    rows = {row[0]: row for row in table["rows"]}
    assert list(rows) == report_data.FAMILIES
    # constant: ok 0.95, 0.97, diverged, ok 0.96; clr-iter: 0.975, failed, 0.98, 0.97
    assert rows["constant"][2:5] == ["3/1/0", "constant-t1", "97.00"]
    assert rows["clr-iter"][2:5] == ["3/0/1", "clr-iter-t2", "98.00"]
    assert rows["sine-exp"][2:] == ["0/4/0", "–", "–", "–", "no ok trial"]
    params = analysis.scores.set_index("label").loc["constant-t1", "params"]
    assert rows["constant"][5:] == ["–", f"lr={params['lr']:g}"]  # no confirmation runs here


def test_the_budget_table_shows_powers_of_two_up_to_the_budget(analysis):
    table = study_tables.budget_table(analysis.budget, 0.1)
    assert table["headers"] == ["Family", "k = 1", "k = 2", "k = 4"]
    cells = {row[0]: row[1:] for row in table["rows"]}
    # k = 1: the mean score of a family's trials (a diverged trial scores chance, 10%)
    expected, low, high = map(float, re.findall(r"[\d.]+", cells["constant"][0]))
    assert expected == pytest.approx((95 + 97 + 10 + 96) / 4, abs=1.0)
    assert (low, high) == (10.00, 97.00)
    assert cells["sine-exp"] == ["10.00 (10.00–10.00)"] * 3
    # clr-iter's failed trial is no draw: 3 trials, so no k = 4
    assert cells["clr-iter"][1].endswith("–98.00)") and cells["clr-iter"][2] == "–"


def test_the_sensitivity_table_gives_the_flat_range_and_what_was_not_ok(analysis):
    rows = {row[0]: row for row in study_tables.sensitivity_table(analysis)["rows"]}
    # constant: best 98.0% at x1; 97.9% at x1/2 and x2, 96% at x4 -> flat within 0.2 pp
    # from k = -1 - (97.9-97.8)/(97.9-95) to 1 + (97.9-97.8)/(97.9-96)
    constant = rows["constant"]
    assert constant[1:3] == ["×1", "98.00"]
    low, high = -1 - 0.1 / 2.9, 1 + 0.1 / 1.9
    assert constant[3] == f"{2.0**low:.3g} to {2.0**high:.3g}"
    assert constant[4] == f"{high - low:.1f}" and constant[5] == "none"
    assert rows["clr-iter"][5] == "×8 (diverged)"


def test_the_trials_table_lists_every_planned_trial(analysis):
    table = study_tables.trials_table(analysis.scores)
    assert [row[0] for row in table["rows"]] == list(analysis.scores["label"])
    statuses = {row[0]: row[2] for row in table["rows"]}
    assert statuses["clr-iter-t1"] == "failed" and statuses["constant-t2"] == "diverged"


def test_the_protocol_names_the_split_and_every_phase_setting(analysis):
    protocol = dict(study_tables.protocol_rows(analysis))
    assert protocol["validation split"].startswith("50,000 train / 10,000 validation of the mnist")
    assert protocol["split checksum"].endswith("ab" * 32)
    assert "4 trials per family" in protocol["budget"]
    assert protocol["zero-budget arm"] == "on"


def _comparison(rows: list[tuple], baseline: str = "constant") -> pd.DataFrame:
    columns = ["schedule", "difference", "ci_low", "ci_high", "p_holm", "significant", "verdict"]
    return pd.DataFrame(rows, columns=columns).assign(baseline=baseline)


def test_the_headline_notes_follow_fresh_seeds_and_the_sequential_rule(analysis):
    """With --fresh-seeds each study re-runs its winners on its own final seeds, and with
    --until-decided the outcomes are the sequential rule's (the notes said the same seeds and
    α = 0.05 whatever the design)."""
    shared = choice_tables.per_study_table(analysis)["note"]
    assert "re-ran its winners on the same 3 final seeds (0..2), on test" in shared
    fresh = replace(analysis, config=analysis.config.with_changes(fresh_seeds=True))
    note = choice_tables.per_study_table(fresh)["note"]
    assert "on its own 3 final seeds (0..2 in study 0, 10,000 later in each next study)" in note
    assert "Outcome at α = 0.05, Holm" in choice_tables.across_table(analysis)["note"]
    sequential = replace(analysis, config=analysis.config.with_changes(until_decided=True))
    note = choice_tables.across_table(sequential)["note"]
    assert "Outcome under the sequential rule of --until-decided" in note
    assert "Outcome at α" not in note


def test_the_tuned_answer_says_yes_no_or_cannot_tell():
    better = _comparison([("clr-iter", 0.005, 0.002, 0.008, 0.01, True, "better")])
    text = study_prose.answer_tuned(better, 16, 5)
    assert text == (
        "Given the same tuning effort (16 trials per family, chosen on validation), yes: on "
        "test, clr-iter +0.50 pp (95% CI +0.20 pp to +0.80 pp, Holm p = 0.01) beats a tuned "
        "constant rate."
    )
    noise = _comparison(
        [
            ("clr-iter", 0.001, -0.001, 0.003, 0.4, False, "no difference"),
            ("sgdr", -0.004, -0.006, -0.002, 0.02, True, "worse"),
        ]
    )
    text = study_prose.answer_tuned(noise, 16, 5)
    assert "no schedule beats a tuned constant rate beyond seed noise" in text
    assert "the differences run from −0.40 pp to +0.10 pp; the largest, clr-iter is +0.10" in text
    assert text.endswith("Significantly below constant: sgdr −0.40 pp (95% CI −0.60 pp to "
                         "−0.20 pp, Holm p = 0.02).")  # fmt: skip
    untested = _comparison([("clr-iter", 0.001, math.nan, math.nan, math.nan, False, "n/a")])
    text = study_prose.answer_tuned(untested, 4, 2)
    assert "cannot tell: too few ok seeds (2 per schedule; at least 3 are needed)" in text
    text = study_prose.answer_tuned(_comparison([]), 4, 2)
    assert text == "Only one family has a winner, so there is nothing to compare on test."


def test_the_budget_note_flags_a_rising_curve_and_a_small_budget(analysis):
    note = study_prose.budget_note(analysis.budget, 4, 0.2)
    assert note.startswith("After 4 trials the expected best validation accuracy (95% range)")
    # constant's exact expectation rises from k = 2 to k = 4; sine-exp's (always chance) not
    assert "Still rising at the full budget: constant (+" in note and "sine-exp (" not in note
    assert "too small to show where tuning saturates" in note
    assert "too small" not in study_prose.budget_note(analysis.budget, 16, 0.2)
    assert study_prose.budget_note(analysis.budget.iloc[:0], 4, 0.2) == ""


def test_the_sensitivity_answer_names_the_least_sensitive_only_beyond_the_grid_step(analysis):
    text = study_prose.answer_sensitivity(analysis.flat, analysis.curve, 0.2, 2)
    assert text.startswith("clr-iter is the least sensitive to its rate.")
    assert text.endswith("Not ok (diverged or failed): clr-iter at ×8.")
    close = dict(report_data.SHAPES, constant=report_data.SHAPES["clr-iter"][:6] + [0.9])
    curve = sensitivity_curve(report_data.sensitivity_points(close))
    text = study_prose.answer_sensitivity(flatness(curve, 0.2), curve, 0.2, 2)
    assert text.startswith("No family is clearly least sensitive: ")
    nothing = analysis.flat.assign(width=np.nan)
    assert "cannot be judged" in study_prose.answer_sensitivity(nothing, curve, 0.2, 2)


def test_the_zero_budget_answer_compares_the_cycle_with_both_constants(analysis):
    text = study_prose.answer_zero_budget(
        analysis.zero, analysis.versus, report_data.STATE["lr_find"]
    )
    assert text.startswith(
        "Smith's zero-budget recipe (bounds from one lr-find sweep on the train split: "
        "base_lr 0.0123, max_lr 0.234; no tuning): the triangular cycle reached "
    )
    assert "against a constant rate at lr-find's suggestion, and " in text
    assert text.endswith("against the tuned constant.")
    assert study_prose.answer_zero_budget(None, None, report_data.STATE["lr_find"]) == ""


def test_the_document_answers_on_top_and_has_every_section(written, analysis):
    html, markdown = written["html"].read_text(), written["md"].read_text()
    answers = study.conclusion(analysis)
    assert len(answers) == 5
    assert answers[0].startswith("On test, each family against the tuned constant: clr-iter ")
    assert "This is one study: one draw of tuning" in answers[0]
    assert answers[1].startswith("Within this study, with seed noise only (winners held fixed): "
                                 "Given the same tuning effort")  # fmt: skip
    for answer in answers:
        assert f"> {answer}\n" in markdown
    assert html.index('id="conclusion"') < html.index("<table")
    for heading in ("Winners", "Tuning effort", "Sensitivity", "Final comparison on test",
                    "Zero-budget arm", "Every trial", "Protocol"):  # fmt: skip
        assert f"## {heading}" in markdown and f">{heading}" in html
    parser = Tables()
    parser.feed(html)
    winners = {row[0]: row for row in parser.tables["winners"][1:]}
    assert winners["clr-iter"][3] == "clr-iter-t2"
    assert dict(parser.tables["protocol"])["zero-budget arm"] == "on"
    for link in re.findall(r"\]\((figures/[^)]+)\)", markdown):
        assert (written["md"].parent / link).read_bytes().startswith(b"\x89PNG")


def test_a_study_without_sensitivity_or_final_runs_says_what_is_missing(tmp_path):
    config = report_data.study_config()
    draw = {"scores": report_data.trial_scores(config)}
    partial = study.study_analysis(config, report_data.STATE, report_data.recorded(config, [draw]))
    written = study.write_study(tmp_path, partial, tmp_path / "report", ("md",))
    markdown = written["md"].read_text()
    assert "> The final re-runs on test are not complete yet: no answer on test." in markdown
    assert "## Final comparison on test" not in markdown and "## Sensitivity" not in markdown
    assert "## Winners" in markdown and "## Every trial" in markdown


def test_the_sensitivity_panel_zooms_on_the_flat_range_and_floors_a_collapse():
    """A collapse (50% at x4, a diverged seed at x8) must not squash the 0.2 pp band: the axis
    spans ZOOM_PP below the best, the collapsed mean sits on the floor labelled with its value."""
    ks = [-1, 0, 1, 2, 3]
    accuracies = dict(zip(ks[:4], [0.977, 0.979, 0.978, 0.50], strict=True))
    rows = [(k, s, "ok", acc) for k, acc in accuracies.items() for s in (0, 1)]
    rows += [(3, 0, "diverged", np.nan), (3, 1, "diverged", np.nan)]
    points = pd.DataFrame(rows, columns=["k", "seed", "status", "validation_accuracy"])
    points["family"] = "constant"
    curve = pd.DataFrame(
        {
            "family": "constant",
            "k": ks,
            "status": ["ok"] * 4 + ["diverged"],
            "mean": [0.977, 0.979, 0.978, 0.50, np.nan],
        }
    )
    flat = pd.DataFrame({"family": ["constant"], "best": [0.979], "low": [-0.5], "high": [0.8]})
    figure = study_figures.sensitivity_figure(points, curve, flat, {"constant": "C0"}, 0.2)
    ax = figure.axes[0]
    bottom, top = ax.get_ylim()
    assert bottom == pytest.approx(97.9 - study_figures.ZOOM_PP)
    assert 97.9 < top < 97.9 + study_figures.ZOOM_PP
    assert [t.get_text() for t in ax.texts] == ["50.0%"]  # the collapsed mean, on the floor
    assert ax.texts[0].xy[1] == pytest.approx(bottom + 0.06 * (top - bottom))


def _second_study(first: dict) -> dict:
    """Study 1: confirmation runs, constant's sweep peaking at x2 beyond its noise, and that x2
    re-checked better than the confirmed winner on the confirmation seeds."""
    shapes = dict(report_data.SHAPES, constant=[0.90, 0.95, 0.979, 0.980, 0.985, 0.96, 0.90])
    confirmation = pd.DataFrame(
        [("constant-t1", 0, 0.975), ("constant-t1", 1, 0.977), ("constant-t3", 0, 0.970),
         ("constant-t3", 1, 0.972), ("clr-iter-t2", 0, 0.980), ("clr-iter-t2", 1, 0.982),
         ("clr-iter-t0", 0, 0.970), ("clr-iter-t0", 1, 0.970)],
        columns=["schedule", "seed", "final_test_accuracy"],
    ).assign(status="ok")  # fmt: skip
    recheck = pd.DataFrame(
        {"schedule": "constant-k+1", "seed": [0, 1], "final_test_accuracy": [0.979, 0.981]}
    ).assign(status="ok")
    sweep = report_data.sweep_frame(report_data.sensitivity_points(shapes))
    return first | {"confirmation": confirmation, "sweep": sweep, "recheck": recheck}


def test_summary_json_agrees_with_the_report_tables_and_the_warning_is_plain(tmp_path):
    config = report_data.study_config().with_changes(studies=2)
    first = report_data.study_parts(tmp_path / "final")["draws"][0]
    state = report_data.STATE | {"studies": report_data.STATE["studies"] * 2}
    draws = report_data.recorded(config, [first, _second_study(first)])
    analysis = study.study_analysis(config, state, draws)
    written = study.write_study(tmp_path, analysis, tmp_path / "report")
    summary = json.loads(written["summary"].read_text())
    html, markdown = written["html"].read_text(), written["md"].read_text()
    assert summary["format"] == "clrbench-study-summary/1" and summary["studies"] == 2
    assert summary["clrbench_version"] == __version__
    assert summary["training_semantics"] == TRAINING_SEMANTICS
    assert summary["families"] == report_data.FAMILIES and summary["baseline"] == "constant"
    # study 1: x2 beat x1 by 0.5 pp beyond the noise, re-checked 98.0% vs 97.6%: the new winner
    (warning,) = summary["warnings"]
    assert warning.startswith("Warning (study 1: constant): the sensitivity sweep found ×2 "
                              "better than the winner's ×1 by +0.50 pp on validation")  # fmt: skip
    assert warning.endswith(
        "it scored 98.00% against the winner's 97.60%, so it replaced the winner."
    )
    assert f"> {warning}\n" in markdown
    winner = summary["per_study"][1]["winners"]["constant"]
    assert (winner["label"], winner["source"], winner["replaced"]) == (
        "constant-k+1", "re-check", "constant-t1"
    )  # fmt: skip
    assert summary["per_study"][1]["flagged"] == ["constant"]
    assert summary["per_study"][0]["winners"]["clr-iter"]["confirmed"] is False
    parser = Tables()
    parser.feed(html)
    # every study's winners on test: the same numbers as the summary
    for row in parser.tables["per-study"][1:]:
        study_index, family, label, _, mean, difference, best = row
        entry = summary["per_study"][int(study_index)]
        assert label == entry["winners"][family]["label"]
        assert mean == f"{entry['final_test_accuracy'][family] * 100:.2f}"
        assert difference.replace("−", "-") == f"{entry['difference'][family] * 100:+.2f}"
        assert (best == "✓") == (family in entry["best"])
    across = {row[0]: row for row in parser.tables["across-studies"][1:]}
    headline = summary["headline"]["clr-iter"]
    assert across["clr-iter"][1] == str(headline["studies"]) == "2"
    assert across["clr-iter"][2].replace("−", "-") == f"{headline['estimate'] * 100:+.2f}"
    assert across["clr-iter"][9] == f"{headline['wins']} of 2"
    assert across["clr-iter"][-1] == headline["verdict"]
    assert headline["outcome"] in ("better", "worse", "equivalent", "undecided")
    assert headline["verdict"].startswith(headline["outcome"])
    assert summary["margin"] == {"margin_pp": 0.1, "margin_source": "mnist-mlp's preset"}
    # expected best vs budget over both studies: Dodge et al.'s formula per study, averaged
    from clrbench.analysis.improvement import expected_best

    budget = summary["expected_best_vs_budget"]
    assert set(budget) == set(report_data.FAMILIES)
    scores = [first["scores"], _second_study(first)["scores"]]
    values = [s.loc[s["family"] == "constant", "score"].dropna().to_numpy() for s in scores]
    k = budget["constant"]["k"]
    assert k == list(range(1, min(map(len, values)) + 1))
    by_hand = np.mean([expected_best(v, np.array(k)) for v in values], axis=0)
    assert budget["constant"]["expected"] == pytest.approx(list(by_hand))
    low, high = np.array(budget["constant"]["low"]), np.array(budget["constant"]["high"])
    assert (low <= by_hand + 1e-12).all() and (by_hand <= high + 1e-12).all()
    assert "Tuning effort over every study" in markdown
    assert across["constant"][9] == f"{summary['baseline_wins']} of 2"
    rechecks = {(row[0], row[1]): row for row in parser.tables["recheck"][1:]}
    assert rechecks[("1", "constant")][-2:] == [
        "beyond noise",
        "98.00% vs 97.60%: replaces the winner",
    ]
    assert rechecks[("0", "constant")][-2:] == ["x1 is the best multiplier", "–"]
    assert "Difference" in parser.tables["across-studies"][0][2]


def test_the_report_shows_the_winners_the_protocol_recorded_not_its_own(tmp_path):
    """A study decides its winners once, in the protocol (study.json); the report reads that
    record. Here the record names constant's trial 3 (96% on validation) where the rule, rerun on
    the same scores, would pick trial 1: the report must show trial 3."""
    parts = report_data.study_parts(tmp_path / "final")
    (draw,) = parts["draws"]
    recorded = draw["winners"]["constant"] | {"label": "constant-t3", "index": 3}
    recorded |= {"validation_accuracy": 0.96}
    draws = [draw | {"winners": draw["winners"] | {"constant": recorded}}]
    analysis = study.study_analysis(parts["config"], parts["state"], draws)
    assert analysis.winners["constant"]["label"] == "constant-t3"
    rows = {row[0]: row for row in study_tables.winners_table(analysis)["rows"]}
    assert rows["constant"][3:5] == ["constant-t3", "96.00"]
