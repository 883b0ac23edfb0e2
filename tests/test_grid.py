"""The optimizer × schedule grid (issue 36): its preset, its cells and baselines, the decided
verdicts against each optimizer's tuned constant and against the best family (chosen on
validation), the cycles' question, and the report's grid table, on synthetic final runs whose
differences are set here (the answers follow from them by construction)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clrbench.study.grid import CYCLIC, best_on_validation, grid_analysis, place, winner_score
from clrbench.study.grid_presets import GRID, JOIN
from clrbench.study.grid_report import best_line, cost_table, cycles_lines, grid_table
from clrbench.study.resolve import resolve_study

SGD, ADAMW = "sgd-momentum", "adamw"
FAMILIES = [
    ("constant", SGD),
    ("cosine", SGD),
    ("clr-iter", SGD),
    ("adamw-constant", ADAMW),
    ("adamw-cosine", ADAMW),
    ("adamw-clr-iter", ADAMW),
    ("sf-sgd", "schedulefree-sgd"),
    ("sf-adamw", "schedulefree-adamw"),
]
# true test accuracy of each family; every study x seed adds the same seed effect to all (paired)
MEANS = {
    "constant": 0.900,
    "cosine": 0.920,  # +2 pp over the constant: better beyond the margin
    "clr-iter": 0.900,  # the constant's own: equivalent within the margin
    "adamw-constant": 0.910,
    "adamw-cosine": 0.900,  # -1 pp: worse
    "adamw-clr-iter": 0.910,
    "sf-sgd": 0.910,  # +1 pp over sgd-momentum's constant: better
    "sf-adamw": 0.895,  # -1.5 pp under adamw's constant: worse
}
MARGIN = 0.001  # 0.1 pp
STUDIES, SEEDS = 3, 5


def finals(luck: float = 1e-4, noise: float = 5e-5) -> list[pd.DataFrame]:
    """Each study's final runs: its winners on the same 5 seeds (a seed effect shared by every
    family, a tuning-luck effect per study and family, a little noise per run)."""
    rng = np.random.default_rng(36)
    out = []
    for _ in range(STUDIES):
        seed_effect = rng.normal(0, 0.01, SEEDS)
        tuned = {family: MEANS[family] + rng.normal(0, luck) for family, _ in FAMILIES}
        rows = [
            {"schedule": family, "seed": seed, "status": "ok", "train_s": 10.0 + i}
            | {"final_test_accuracy": tuned[family] + seed_effect[seed] + rng.normal(0, noise)}
            for i, (family, _) in enumerate(FAMILIES)
            for seed in range(SEEDS)
        ]
        out.append(pd.DataFrame(rows))
    return out


def winners() -> list[dict[str, dict]]:
    """Validation scores: the test means plus 0.5 pp (cosine best on validation)."""
    return [{f: {"validation_accuracy": MEANS[f] + 0.005} for f, _ in FAMILIES}] * STUDIES


@pytest.fixture(scope="module")
def grid():
    found = grid_analysis(FAMILIES, finals(), winners(), MARGIN)
    assert found is not None
    return found


def test_cells_rows_columns_and_baselines():
    cells = {c.family: c for c in place(FAMILIES)}
    assert (cells["adamw-cosine"].schedule, cells["adamw-cosine"].optimizer) == ("cosine", ADAMW)
    assert cells["adamw-cosine"].baseline == "adamw-constant"
    assert cells["cosine"].baseline == "constant"
    # schedule-free: a row of its own, compared with the constant of the optimizer it frees
    assert (cells["sf-sgd"].schedule, cells["sf-sgd"].baseline) == ("schedule-free", "constant")
    assert (cells["sf-adamw"].optimizer, cells["sf-adamw"].baseline) == (ADAMW, "adamw-constant")


def test_one_optimizer_is_no_grid():
    assert place([("constant", SGD), ("cosine", SGD)]) is None
    assert grid_analysis([("constant", SGD), ("cosine", SGD)], finals(), winners(), MARGIN) is None


def test_a_column_without_a_constant_has_no_baseline():
    cells = place([("constant", SGD), ("adamw-cosine", ADAMW)])
    assert [c.baseline for c in cells] == ["constant", None]


def test_verdicts_against_each_optimizers_constant(grid):
    cells = grid.cells.set_index("family")
    expected = {"cosine": "better", "clr-iter": "equivalent", "adamw-cosine": "worse"}
    expected |= {"adamw-clr-iter": "equivalent", "sf-sgd": "better", "sf-adamw": "worse"}
    assert cells.loc[list(expected), "outcome"].to_dict() == expected
    # the median difference: recomputed here from the frames (per-study mean paired difference)
    for family, baseline in (("cosine", "constant"), ("sf-adamw", "adamw-constant")):
        per_study = []
        for final in finals():
            by = final.pivot(index="seed", columns="schedule", values="final_test_accuracy")
            per_study.append(float((by[family] - by[baseline]).mean()))
        assert cells.loc[family, "median"] == pytest.approx(float(np.median(per_study)), abs=1e-12)
    assert cells.loc["cosine", "median"] == pytest.approx(0.02, abs=5e-4)
    assert cells.loc["cosine", "studies_won"] == STUDIES  # the highest mean in every study
    assert cells.loc["constant", "studies_won"] == 0
    assert cells.loc["sf-adamw", "cost_s"] == pytest.approx(17.0)


def test_best_family_is_chosen_on_validation_and_beats_the_rest(grid):
    assert grid.best == "cosine"
    versus = grid.versus_best.set_index("family")
    assert "cosine" not in versus.index
    assert set(versus["outcome"]) == {"worse"}
    assert best_line(grid).startswith("The grid's best family, chosen on validation, is cosine.")
    # validation decides, not test: a family best on validation but not on test is still "best"
    flipped = [{**w, "constant": {"validation_accuracy": 0.99}} for w in winners()]
    other = grid_analysis(FAMILIES, finals(), flipped, MARGIN)
    assert other.best == "constant"
    assert other.versus_best.set_index("family").loc["cosine", "outcome"] == "better"


def test_a_winner_the_re_check_put_in_place_counts_by_its_confirmation_seeds(grid):
    """A winner the sensitivity re-check put in place has no trial of its own (validation
    accuracy None) but its confirmation mean: it can be the best family. A confirmed winner
    counts by its confirmation mean too (what chose it), not its single trial's score."""
    rechecked = {"validation_accuracy": None, "confirmation_mean": 0.99, "source": "re-check"}
    changed = [{**w, "constant": rechecked} for w in winners()]
    assert grid_analysis(FAMILIES, finals(), changed, MARGIN).best == "constant"
    lucky = {"validation_accuracy": 0.999, "confirmation_mean": 0.5}  # one lucky trial
    changed = [{**w, "constant": lucky} for w in winners()]
    assert grid_analysis(FAMILIES, finals(), changed, MARGIN).best == "cosine"
    assert winner_score({"validation_accuracy": 0.7}) == 0.7  # no confirmation phase
    assert math.isnan(winner_score({"validation_accuracy": None}))


def test_best_on_validation_edges():
    assert best_on_validation({"a": 0.5, "b": 0.5}, ["a", "b"]) == "a"  # ties: the earlier
    assert best_on_validation({"a": math.nan}, ["a", "b"]) is None


def test_the_cycles_question_per_optimizer(grid):
    cycles = grid.cycles.set_index("optimizer")
    # sgd: the best cycle (clr-iter, the only one) against the best non-cycle (cosine): worse
    assert cycles.loc[SGD, ["cyclic", "non_cyclic", "outcome"]].tolist() == [
        "clr-iter", "cosine", "worse"]  # fmt: skip
    # adamw: adamw-clr-iter against adamw-constant (both 0.91): equivalent
    assert cycles.loc[ADAMW, "outcome"] == "equivalent"
    lines = cycles_lines(grid)
    assert lines[0].startswith("The cycles under sgd-momentum: does the best cycle (clr-iter)")
    assert "No, it is worse" in lines[0] and "No difference" in lines[1]
    assert "clr-iter" in CYCLIC and "one-cycle" not in CYCLIC


def test_grid_table_rows_are_schedules_columns_optimizers(grid):
    table = grid_table(grid, STUDIES)
    assert table["headers"] == ["Schedule", SGD, ADAMW]
    rows = {r[0]: r[1:] for r in table["rows"]}
    assert list(rows) == ["constant", "cosine", "clr-iter", "schedule-free"]
    assert rows["constant"][0].startswith("tuned constant (baseline)")
    assert rows["cosine"][0].startswith("+2.0") and "better" in rows["cosine"][0]
    assert "won 3 of 3" in rows["cosine"][0]
    assert "worse" in rows["cosine"][1] and "equivalent within ±0.1 pp" in rows["clr-iter"][1]
    budget = pd.DataFrame({"family": ["cosine"] * 2, "k": [1, 2], "expected": [0.9, 0.92]})
    cost = {r[0]: r for r in cost_table(grid, budget)["rows"]}
    assert cost["cosine"][2:5] == ["11.0", "90.00", "92.00"]
    assert cost["constant"][3] == "–"


def test_the_grid_preset_spans_both_optimizers_and_schedule_free():
    config = resolve_study(preset="grid", workload="mnist1d-mlp")
    labels = [f.label for f in config.families]
    assert sorted(labels) == sorted(GRID) and len(labels) == 21
    optimizers = {f.label: f.optimizer or config.workload.optimizer for f in config.families}
    assert optimizers["sine-exp"] == SGD and optimizers["adamw-wsd"] == ADAMW
    assert optimizers["sf-sgd"] == "schedulefree-sgd"
    by = {f.label: f for f in config.families}
    adamw_knobs = {k.name: k for k in by["adamw-cosine"].knobs}
    assert (adamw_knobs["weight_decay"].low, adamw_knobs["weight_decay"].high) == (5e-3, 1.0)
    assert adamw_knobs["peak_lr"].low == pytest.approx(0.03 * 0.03)
    assert "weight_decay" not in {k.name for k in by["cosine"].knobs}  # SGD takes none
    sf = {k.name: k for k in by["sf-adamw"].knobs}
    assert sf["optimizer_warmup_steps"].unit == "run" and sf["lr"].high == pytest.approx(0.3)
    assert config.budget == 16 and config.workload.epochs == 100


def test_a_schedule_free_trial_carries_its_warmup_and_decay_to_the_run():
    from clrbench.study.config import entry_for
    from clrbench.study.protocol import plan_trials

    config = resolve_study(preset="grid", workload="mnist1d-mlp", families="constant,sf-sgd")
    trial = [t for t in plan_trials(config) if t.family == "sf-sgd"][0]
    entry = entry_for(config.families[1], trial.label, trial.params)
    spe, total = config.lengths()
    assert dict(entry.params) == {"lr": trial.params["lr"]}  # the schedule: a constant rate
    workload = entry.workload_of(config.workload, total)
    assert workload.optimizer == "schedulefree-sgd"
    assert workload.optimizer_warmup_steps == trial.params["optimizer_warmup_steps"]
    assert 0.01 * total <= workload.optimizer_warmup_steps <= 0.1 * total
    assert workload.weight_decay == trial.params["weight_decay"]


def test_grid_join_keeps_the_reference_families_and_adds_the_issues():
    reference = resolve_study(preset="reference", workload="fashion-mnist-mlp")
    join = resolve_study(preset="grid-join", workload="fashion-mnist-mlp")
    labels = [f.label for f in join.families]
    assert labels[:5] == [f.label for f in reference.families]
    assert set(labels[5:]) == set(JOIN)
    # the same protocol, split and final seeds, and the reference's families unchanged: its
    # trials keep their run ids, so the join trains only the new families
    assert join.workload == reference.workload and join.seeds == reference.seeds
    assert join.families[:5] == reference.families
    assert (join.budget, join.confirm_top, join.first_seed) == (16, 3, 0)


def test_the_guides_run_counts_are_the_presets_plans():
    from pathlib import Path

    from clrbench.study.grid_presets import planned_runs
    from clrbench.study.protocol import plan_trials

    guide = (Path(__file__).resolve().parents[1] / "docs/guides/grid.md").read_text()
    config = resolve_study(preset="grid", workload="mnist1d-mlp", studies=5)
    runs = planned_runs(config)
    trials = sum(len(plan_trials(config.draw(i))) for i in range(config.studies))
    assert runs["trials"] == trials == 21 * 16 * 5
    assert runs["final"] == 21 * 5 * 5 + 2 * 5  # the zero-budget arm once, on the final seeds
    row = "| `grid`, `mnist1d-mlp`, 5 studies | 1,680 | 945 | 1,470 | 535 | 4,630 | 315 | 2,700 |"
    assert row in guide and config.workload.total_steps == 2700
    join = resolve_study(preset="grid-join", workload="mnist-mlp", studies=3)
    counted = planned_runs(join, JOIN)
    assert (counted["total"], counted["recheck_at_most"]) == (1584, 108)
    assert "| 576 | 324 | 504 | 180 | 1,584 | 108 | 9,775 |" in guide


def test_the_grid_goes_into_summary_json(grid):
    import json

    from clrbench.study.summary import _grid
    from clrbench.text import json_plain as plain

    document = json.loads(json.dumps(plain(_grid(grid)), allow_nan=False))
    assert document["best"] == "cosine"
    assert document["cells"]["sf-adamw"]["baseline"] == "adamw-constant"
    assert document["cells"]["cosine"]["outcome"] == "better"
    assert document["cells"]["constant"]["outcome"] is None  # the baseline is not compared
    assert {c["optimizer"]: c["outcome"] for c in document["cycles"]} == {
        SGD: "worse", ADAMW: "equivalent"}  # fmt: skip
    assert set(document["versus_best"]) == {f for f, _ in FAMILIES} - {"cosine"}


def test_before_the_final_runs_the_grid_has_no_answer_yet():
    early = grid_analysis(FAMILIES, [], winners(), MARGIN)
    assert early.best == "cosine"  # chosen on validation: known before any test run
    rows = {r[0]: r[1:] for r in grid_table(early, STUDIES)["rows"]}
    assert rows["cosine"][0] == "–" and rows["constant"][0].startswith("tuned constant")
    assert best_line(early).endswith("Its final runs on test are not complete yet.")
    assert all("Not known yet" in line for line in cycles_lines(early))


def test_the_forest_figure_shows_every_compared_family_and_the_margin(grid):
    from clrbench.study.grid_report import forest_figure

    ax = forest_figure(grid, {}).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "cosine (sgd-momentum)" and len(labels) == len(FAMILIES) - 2
    band = ax.patches[0]  # the margin band, in pp
    assert band.get_x() == pytest.approx(-0.1) and band.get_width() == pytest.approx(0.2)
    assert forest_figure(grid_analysis(FAMILIES, [], winners(), MARGIN), {}).axes[0]
