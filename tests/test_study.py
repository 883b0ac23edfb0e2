"""The study's planner and statistics without training: search spaces, Sobol trials, run ids,
the best-vs-budget bootstrap against exact computations, flatness, configuration errors."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from test_stats import hand_made  # results from hand-written per-epoch accuracies

from clrbench.cli.main import main
from clrbench.errors import ConfigError
from clrbench.study.analysis import (
    best_vs_budget,
    bootstrap_best,
    expected_best_exact,
    flatness,
    select_winners,
    trial_scores,
)
from clrbench.study.config import StudyConfig
from clrbench.study.presets import preset
from clrbench.study.protocol import (
    final_experiment,
    plan_trials,
    sensitivity_experiment,
    trials_experiment,
)
from clrbench.study.space import parse_knob, scale_rates


@pytest.fixture(scope="module")
def quick() -> StudyConfig:
    return StudyConfig.from_dict(preset("quick"))


def best_quantile_exact(values: np.ndarray, k: int, q: float) -> float:
    """The q-quantile (inverted CDF) of the max of k draws: the smallest v_(i), (i/N)^k >= q."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    cdf = (np.arange(1, ordered.size + 1) / ordered.size) ** k
    return float(ordered[np.searchsorted(cdf, q - 1e-12)])


def test_trials_are_reproducible_and_independent_of_anything_but_the_config(quick):
    first, again = plan_trials(quick), plan_trials(StudyConfig.from_dict(preset("quick")))
    assert [(t.label, t.params) for t in first] == [(t.label, t.params) for t in again]
    assert len(first) == quick.budget * len(quick.families)
    other = plan_trials(replace(quick, sampling_seed=1))
    assert [t.params for t in other] != [t.params for t in first]
    # a larger budget extends a smaller one: its first trials are the same points
    larger = plan_trials(replace(quick, budget=8))
    for family in quick.families:
        small = [t.params for t in first if t.family == family.label]
        assert [t.params for t in larger if t.family == family.label][:4] == small
    # dropping a family changes no other family's trials
    fewer = plan_trials(quick.select(["clr-iter", "constant"]))
    assert {t.label: t.params for t in fewer}.items() <= {t.label: t.params for t in first}.items()


def test_trials_cover_their_space(quick):
    trials = plan_trials(replace(quick, budget=64))
    spe, total = quick.lengths()
    constant = np.array([t.params["lr"] for t in trials if t.family == "constant"])
    assert constant.min() >= 0.003 and constant.max() <= 1.0
    # log-uniform: a quarter of the points in each quarter of the log range (Sobol: exactly)
    quarters = np.floor(4 * np.log(constant / 0.003) / np.log(1.0 / 0.003))
    assert np.bincount(quarters.astype(int), minlength=4).tolist() == [16, 16, 16, 16]
    for trial in (t for t in trials if t.family == "clr-iter"):
        ratio = trial.params["base_lr"] / trial.params["max_lr"]
        assert 0.03 * 0.999 <= ratio <= 0.5 * 1.001
        assert round(0.75 * spe) <= trial.params["step_size"] <= round(1.5 * spe)
    decays = [t.params["decay"] for t in trials if t.family == "sine-exp"]
    assert all(0.01 * 0.999 <= d**total <= 1.0 for d in decays)


def test_every_phase_is_an_ordinary_experiment_with_distinct_seeds(quick):
    trials = plan_trials(quick)
    tuning = trials_experiment(quick, trials)
    assert tuning.workload.evaluate_on == "validation" and tuning.seeds == (quick.tuning_seed,)
    assert {r.run_id for r in tuning.runs()} == {
        r.run_id for r in trials_experiment(quick, trials).runs()
    }
    winners = {t.family: t.params for t in trials if t.index == 0}
    sensitivity = sensitivity_experiment(quick, winners)
    assert sensitivity.workload.evaluate_on == "validation"
    assert len(sensitivity.runs()) == len(winners) * 7 * quick.sensitivity_seeds
    final = final_experiment(quick, winners, {"base_lr": 0.04, "max_lr": 0.17})
    assert final.workload.evaluate_on == "test" and final.workload.validation_size == 10_000
    assert [e.label for e in final.schedules][-2:] == ["lr-find-clr", "lr-find-constant"]
    seeds = [set(e.seeds) for e in (tuning, sensitivity, final)]
    assert all(not a & b for a, b in itertools.combinations(seeds, 2))
    # runs without a split keep the ids they had before splits existed
    plain = final.with_workload(validation_size=None, evaluate_on="test").runs()[0]
    assert "validation_size" not in plain.config() and "evaluate_on" not in plain.config()


def test_scaling_touches_only_rates():
    params = {"base_lr": 0.02, "max_lr": 0.2, "step_size": 100}
    scaled = scale_rates("triangular", params, 4.0)
    assert scaled == {"base_lr": 0.08, "max_lr": 0.8, "step_size": 100}


# --- best vs budget ---


def _enumerated_max(values: np.ndarray, k: int) -> np.ndarray:
    """The max of every one of the N^k equally likely ordered draws (brute force)."""
    return np.array([max(draw) for draw in itertools.product(values, repeat=k)])


@pytest.mark.parametrize("values", [[0.90, 0.95, 0.97, 0.98], [0.1, 0.96, 0.96, 0.97, 0.99]])
def test_expected_best_matches_enumeration_and_the_bootstrap(values):
    values = np.array(values)
    rng = np.random.default_rng(0)
    for k in range(1, 5):
        maxima = _enumerated_max(values, k)
        assert expected_best_exact(values, k) == pytest.approx(maxima.mean(), abs=1e-12)
        mean, low, high = bootstrap_best(values, k, 200_000, rng)
        standard_error = maxima.std() / math.sqrt(200_000)
        assert abs(mean - maxima.mean()) < 4 * standard_error + 1e-12
        assert low == best_quantile_exact(values, k, 0.025)
        assert high == best_quantile_exact(values, k, 0.975)
        assert low == np.quantile(maxima, 0.025, method="inverted_cdf")


def test_trial_scores_are_ok_accuracy_chance_for_diverged_and_none_for_failed_or_missing():
    results = hand_made(
        {"a-t0": [[0.9, 0.95]], "a-t1": [[0.99, 0.99]], "a-t2": [[0.97, 0.97]]},
        statuses={"a-t1-s0": "diverged", "a-t2-s0": "failed"},
    )
    trials = [{"family": "a", "index": i, "label": f"a-t{i}", "params": {}} for i in range(4)]
    scores = trial_scores(results, trials, chance=0.1)  # ten classes
    assert scores["status"].tolist() == ["ok", "diverged", "failed", "missing"]
    assert scores["score"].tolist()[:2] == pytest.approx([0.95, 0.1])  # final, not best; chance
    assert scores["score"].iloc[2:].isna().all()  # a crash and a missing run are not draws


def test_best_vs_budget_scores_diverged_trials_as_chance_and_never_selects_them():
    scores = pd.DataFrame(
        {
            "family": ["a"] * 3 + ["b"] * 2,
            "index": [0, 1, 2, 0, 1],
            "label": ["a-t0", "a-t1", "a-t2", "b-t0", "b-t1"],
            "status": ["ok", "diverged", "ok", "ok", "failed"],
            "validation_accuracy": [0.95, 0.99, 0.95, 0.90, math.nan],
            "score": [0.95, 0.1, 0.95, 0.90, math.nan],
            "params": [{"lr": 0.1}, {"lr": 2.0}, {"lr": 0.2}, {"lr": 0.01}, {"lr": 0.05}],
        }
    )
    winners = select_winners(scores)
    assert winners["a"]["label"] == "a-t0"  # tie with a-t2: the earlier trial; never the diverged
    assert winners["b"]["label"] == "b-t0"
    curve = best_vs_budget(scores, 1000).set_index(["family", "k"])
    assert curve.loc[("a", 1), "exact"] == pytest.approx((0.95 * 2 + 0.1) / 3)
    assert list(curve.loc["b"].index) == [1]  # the failed trial is not a draw


# --- sensitivity ---


def _curve(means, statuses=None) -> pd.DataFrame:
    ks = list(range(-3, 4))
    statuses = statuses or ["ok"] * 7
    return pd.DataFrame(
        {"family": "f", "k": ks, "multiplier": [2.0**k for k in ks], "status": statuses}
        | {"mean": means, "runs": 2, "ok": 2, "sd": 0.001}
    )


def test_flatness_interpolates_between_grid_points():
    #          k = -3    -2    -1     0     1     2     3
    means = [0.900, 0.970, 0.979, 0.980, 0.977, 0.960, 0.5]
    row = flatness(_curve(means), 0.2).iloc[0]
    assert row["best_k"] == 0 and row["best"] == 0.980
    # threshold 0.978: low edge between -2 (0.970) and -1 (0.979): -1 - 1/9; high between 0 and 1
    assert row["low"] == pytest.approx(-1 - 1 / 9)
    assert row["high"] == pytest.approx(2 / 3)
    assert row["width"] == pytest.approx(2 / 3 + 1 + 1 / 9)
    assert not row["censored_low"] and not row["censored_high"]


def test_flatness_stops_at_diverged_points_and_flags_the_grid_end():
    means = [0.979, 0.980, 0.980, 0.979, 0.5, math.nan, math.nan]
    statuses = ["ok", "ok", "ok", "ok", "partly diverged", "diverged", "diverged"]
    row = flatness(_curve(means, statuses), 0.2).iloc[0]
    assert row["low"] == -3 and row["censored_low"]
    assert row["high"] == 0 and not row["censored_high"]  # the next point is not ok: no credit


# --- configuration ---


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"log": [0, 1]}, "0 < low"),
        ({"uniform": [1, 0]}, "low <= high"),
        ({"int": [1.5, 3]}, "whole numbers"),
        ({"log": [0.1, 1], "uniform": [0, 1]}, "exactly one"),
        ({"log": [0.1, 1], "unit": "hours"}, "unit"),
        (True, "number or a table"),  # a string is a shape's choice: tests/test_study_modern.py
    ],
)
def test_bad_knobs_are_one_clear_error(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_knob("constant", "lr", raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"study": {"budget": 0}}, "budget"),
        ({"study": {"tuning_seed": 1}}, "tuning seed"),
        ({"study": {"octaves": [1, 2]}}, "include 0"),
        ({"study": {"flavour": 1}}, "unknown key"),
        (
            {"experiment": {"name": "x", "epochs": 3, "train_size": 3000, "validation_size": 5}},
            "unknown",
        ),
    ],
)
def test_bad_study_settings_are_one_clear_error(change, message):
    raw = preset("quick")
    raw = raw | {key: raw[key] | value for key, value in change.items()}
    with pytest.raises(ConfigError, match=message):
        StudyConfig.from_dict(raw)


def test_cli_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "--preset", "quick", "--families", "nope", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("clrbench: error: unknown family 'nope'") and "\n" not in error
    assert not out.exists()


HOLD_LOCK = """
import sys, time
from clrbench.suite.lock import folder_lock
with folder_lock(sys.argv[1], "study"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.mark.slow  # a second process holds the folder
def test_a_study_folder_held_by_another_process_is_refused_before_anything_is_written(
    tmp_path, capsys
):
    import subprocess
    import sys

    out = tmp_path / "study"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            assert main(["study", "--preset", "quick", "--budget", "2", "--out", str(out)]) == 2
        finally:
            holder.kill()
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the plan's header line
    assert error.startswith(f"clrbench: error: {out}: in use by clrbench study (pid {holder.pid} ")
    assert {p.name for p in out.iterdir()} <= {".clrbench.suite.lock", ".clrbench.suite.lock.json"}


def test_emit_config_round_trips(tmp_path):
    path = tmp_path / "study.toml"
    assert main(["study", "--preset", "quick", "--families", "constant,sgdr", "--budget", "3",
                 "--emit-config", str(path)]) == 0  # fmt: skip
    from clrbench.config.parse import load_toml

    config = StudyConfig.from_dict(load_toml(path))
    assert [f.label for f in config.families] == ["constant", "sgdr"] and config.budget == 3
    assert plan_trials(config)[0].params == plan_trials(config)[0].params


def test_confirmation_is_set_from_the_command_line(tmp_path):
    path = tmp_path / "study.toml"
    args = ["study", "--preset", "quick", "--confirm-top", "2", "--confirm-seeds", "4"]
    assert main([*args, "--emit-config", str(path)]) == 0
    from clrbench.config.parse import load_toml

    config = StudyConfig.from_dict(load_toml(path))
    assert (config.confirm_top, config.confirm_seeds) == (2, 4)
    assert config.draw_seeds(1)["confirmation"] == (13000, 13001, 13002, 13003)


def test_confirmation_off_and_bad_counts(tmp_path, capsys):
    path = tmp_path / "study.toml"
    assert (
        main(["study", "--preset", "quick", "--confirm-top", "0", "--emit-config", str(path)]) == 0
    )
    from clrbench.config.parse import load_toml

    assert StudyConfig.from_dict(load_toml(path)).confirm_top == 0
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["study", "--preset", "quick", "--confirm-seeds", "0", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "confirm_seeds" in error[0] and not out.exists()


def test_fresh_seeds_and_until_decided_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "study.toml"
    args = ["study", "--preset", "quick", "--fresh-seeds", "--until-decided", "--max-studies"]
    assert main([*args, "5", "--margin", "0.2", "--emit-config", str(path)]) == 0
    from clrbench.config.parse import load_toml

    config = StudyConfig.from_dict(load_toml(path))
    assert (config.fresh_seeds, config.until_decided, config.studies) == (True, True, 5)
    assert main([*args[:-1], "--emit-config", str(tmp_path / "x.toml")]) == 2
    assert "--until-decided needs --max-studies N" in capsys.readouterr().err
    assert main(["study", "--preset", "quick", "--margin", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--margin -1: give percentage points above 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.toml").exists()
