"""How a study chooses its winners and repeats itself, on constructed inputs (no training):
confirmation of the best trials, the sensitivity check and its re-check, the per-study seeds,
old study folders."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from clrbench.errors import ConfigError, ResultsError
from clrbench.study.config import STUDY_SEED_STRIDE, StudyConfig, octave_label
from clrbench.study.presets import preset
from clrbench.study.protocol import (
    confirm_experiment,
    plan_trials,
    recheck_experiment,
    sensitivity_experiment,
    trials_experiment,
)
from clrbench.study.select import (
    NOISE_SE,
    candidates,
    choose,
    pooled_sd,
    sensitivity_check,
)
from clrbench.study.state import StudyState, read_state


@pytest.fixture(scope="module")
def config() -> StudyConfig:
    raw = preset("quick")
    raw["study"] |= {"confirm_top": 2, "confirm_seeds": 3}
    return StudyConfig.from_dict(raw).select(["constant"])


def _scores(accuracies: list[float], statuses: list[str] | None = None) -> pd.DataFrame:
    statuses = statuses or ["ok"] * len(accuracies)
    return pd.DataFrame(
        {"family": "constant", "index": range(len(accuracies)), "status": statuses}
        | {"label": [f"constant-t{i}" for i in range(len(accuracies))]}
        | {"validation_accuracy": accuracies, "score": accuracies}
        | {"params": [{"lr": 0.01 * (i + 1)} for i in range(len(accuracies))]}
    )


def _runs(values: dict[str, list[float]], status: dict[tuple[str, int], str] | None = None):
    """A phase's ``stats.final_metrics`` frame: label -> final accuracy per seed 0, 1, ..."""
    status = status or {}
    rows = [
        (label, seed, status.get((label, seed), "ok"), accuracy)
        for label, accuracies in values.items()
        for seed, accuracy in enumerate(accuracies)
    ]
    return pd.DataFrame(rows, columns=["schedule", "seed", "status", "final_test_accuracy"])


def _sweep(means: dict[int, float], spread: float = 0.0005, seeds: int = 2) -> pd.DataFrame:
    """The sweep around constant's winner: at k, seeds spread by ±spread around means[k]."""
    values = {
        octave_label("constant", k): [mean + (spread if s % 2 else -spread) for s in range(seeds)]
        for k, mean in means.items()
    }
    return _runs(values)


# --- confirmation ---


def test_candidates_are_the_best_ok_trials_ties_to_the_earlier():
    scores = _scores([0.95, 0.97, 0.99, 0.97], ["ok", "ok", "diverged", "ok"])
    chosen = candidates(scores, 2)["constant"]
    assert [c["label"] for c in chosen] == ["constant-t1", "constant-t3"]  # tie: the earlier
    assert candidates(scores, 0) == {}


def test_the_winner_is_the_best_confirmation_mean_not_the_best_single_seed(config):
    scores = _scores([0.980, 0.975, 0.970])  # t0 won the tuning seed
    confirmation = _runs({"constant-t0": [0.970, 0.972, 0.971], "constant-t1": [0.976] * 3})
    choice = choose(config, scores, confirmation)
    assert [c["label"] for c in choice.candidates["constant"]] == ["constant-t0", "constant-t1"]
    winner = choice.winners["constant"]
    assert winner["label"] == "constant-t1" and winner["confirmed"]
    assert winner["confirmation_mean"] == pytest.approx(0.976)
    assert winner["params"] == {"lr": 0.02}
    # a tie on the mean: the better-ranked trial (by its tuning score)
    tied = _runs({"constant-t0": [0.976] * 3, "constant-t1": [0.976] * 3})
    assert choose(config, scores, tied).winners["constant"]["label"] == "constant-t0"


def test_a_diverged_confirmation_seed_scores_chance_and_a_failed_one_no_score(config):
    scores = _scores([0.980, 0.975])
    confirmation = _runs(
        {"constant-t0": [0.99, 0.99, 0.99], "constant-t1": [0.976, 0.976, 0.0]},
        status={("constant-t0", 2): "diverged", ("constant-t1", 2): "failed"},
    )
    choice = choose(config, scores, confirmation)
    means = choice.means.set_index("label")
    assert means.loc["constant-t0", "mean"] == pytest.approx((0.99 * 2 + 0.1) / 3)
    assert means.loc["constant-t1", ["scored", "diverged"]].tolist() == [2, 0]
    assert choice.winners["constant"]["label"] == "constant-t1"


def test_without_confirmation_runs_the_winner_is_the_best_trial_unconfirmed(config):
    choice = choose(config, _scores([0.97, 0.98]))
    assert choice.winners["constant"]["label"] == "constant-t1"
    assert not choice.winners["constant"]["confirmed"]
    assert math.isnan(choice.winners["constant"]["confirmation_mean"])


# --- the sensitivity check and its re-check ---

AROUND = {-1: 0.970, 0: 0.975, 1: 0.978, 2: 0.960}  # x2 is 0.3 pp above x1


def test_a_multiplier_beyond_the_noise_is_flagged_and_re_checked(config):
    scores = _scores([0.980, 0.975])
    confirmation = _runs({"constant-t0": [0.976] * 3, "constant-t1": [0.970] * 3})
    choice = choose(config, scores, confirmation, _sweep(AROUND))
    row = choice.check.iloc[0]
    # seeds at ±0.05 pp: pooled sd 0.0005·√2, SE of a difference of two 2-seed means = that
    sd = 0.0005 * math.sqrt(2)
    assert row["noise_sd"] == pytest.approx(sd)
    assert row["threshold"] == pytest.approx(NOISE_SE * sd)
    assert row["best_k"] == 1 and row["difference"] == pytest.approx(0.003)
    assert row["flagged"] and row["reason"] == "beyond noise"
    recheck = choice.rechecks["constant"]
    assert recheck == {"label": "constant-k+1", "k": 1, "params": {"lr": 0.02}}  # t0: lr 0.01
    assert [e.label for e in recheck_experiment(config, choice.rechecks).schedules] == [
        "constant-k+1"
    ]
    # re-checked on the confirmation seeds: better than the winner's 97.6% -> the new winner
    rechecked = _runs({"constant-k+1": [0.979] * 3})
    winner = choose(config, scores, confirmation, _sweep(AROUND), rechecked).winners["constant"]
    assert (winner["label"], winner["source"], winner["replaced"]) == (
        "constant-k+1", "re-check", "constant-t0"
    )  # fmt: skip
    assert winner["confirmation_mean"] == pytest.approx(0.979) and winner["params"] == {"lr": 0.02}
    # not better on the confirmation seeds (a tie included): the winner stays
    same = _runs({"constant-k+1": [0.976] * 3})
    kept = choose(config, scores, confirmation, _sweep(AROUND), same)
    assert kept.winners["constant"]["label"] == "constant-t0"


def test_a_multiplier_within_the_noise_is_not_flagged():
    noisy = _sweep(AROUND, spread=0.003)  # seed sd 0.42 pp: 0.3 pp is within 2 SE
    row = sensitivity_check(_points(noisy)).iloc[0]
    assert row["best_k"] == 1 and not row["flagged"] and row["reason"] == "within noise"
    at_one = sensitivity_check(_points(_sweep({-1: 0.97, 0: 0.98, 1: 0.97}))).iloc[0]
    assert at_one["best_k"] == 0 and not at_one["flagged"]


def test_noise_edges_one_seed_zero_spread_and_a_diverged_x1():
    one_seed = sensitivity_check(_points(_sweep(AROUND, seeds=1))).iloc[0]
    assert math.isnan(one_seed["noise_sd"]) and one_seed["flagged"]  # unknown noise: any gain
    assert one_seed["reason"] == "noise unknown (one seed)"
    exact = sensitivity_check(_points(_sweep(AROUND, spread=0.0))).iloc[0]
    assert exact["noise_sd"] == 0 and exact["threshold"] == 0 and exact["flagged"]
    points = _points(_sweep(AROUND))
    points.loc[points["k"] == 0, "status"] = "diverged"
    diverged = sensitivity_check(points).iloc[0]
    assert diverged["flagged"] and diverged["reason"] == "x1 did not finish ok on every seed"
    assert pooled_sd(points.iloc[:0]) != pooled_sd(points.iloc[:0])  # no point: NaN


def test_without_confirmation_a_flagged_multiplier_is_not_re_checked(config):
    off = config.with_changes(confirm_top=0)
    choice = choose(off, _scores([0.980, 0.975]), None, _sweep(AROUND))
    assert choice.check["flagged"].iloc[0] and choice.rechecks == {}


def _points(sweep: pd.DataFrame) -> pd.DataFrame:
    from clrbench.study.analysis import sweep_points

    return sweep_points(sweep, {octave_label("constant", k): ("constant", k) for k in range(-3, 4)})


# --- repeated studies: seeds ---


def test_study_0_keeps_todays_seeds_and_the_others_shift_every_selecting_seed():
    one = StudyConfig.from_dict(preset("quick"))
    three = one.with_changes(studies=3)
    assert three.draw(0).to_dict() == one.to_dict()  # the configured seeds, one study
    assert [t.params for t in plan_trials(three.draw(0))] == [t.params for t in plan_trials(one)]
    runs = trials_experiment(three.draw(0), plan_trials(three.draw(0))).runs()
    assert [r.run_id for r in runs] == [
        r.run_id for r in trials_experiment(one, plan_trials(one)).runs()
    ]
    second = three.draw(2)
    assert second.sampling_seed == one.sampling_seed + 2 * STUDY_SEED_STRIDE
    assert second.draw_seeds(0) == three.draw_seeds(2)
    assert second.draw_seeds(0)["tuning"] == (one.tuning_seed + 2 * STUDY_SEED_STRIDE,)
    assert (second.first_seed, second.seeds) == (one.first_seed, one.seeds)  # paired finals
    assert [t.params for t in plan_trials(second)] != [t.params for t in plan_trials(one)]
    seeds = [set(s) for i in range(3) for s in three.draw_seeds(i).values()]
    assert sum(map(len, seeds)) == len(set().union(*seeds))  # no seed serves twice
    assert not set().union(*seeds) & set(range(one.first_seed, one.first_seed + one.seeds))
    winners = {f.label: plan_trials(one)[0].params for f in one.families[:1]}
    chosen = {f: [{"label": f"{f}-t0", "params": p}] for f, p in winners.items()}
    assert confirm_experiment(second, chosen).seeds == three.draw_seeds(2)["confirmation"]
    assert sensitivity_experiment(second, winners).seeds == three.draw_seeds(2)["sensitivity"]
    with pytest.raises(ConfigError, match="no such study"):
        three.draw(3)


def test_overlapping_seed_ranges_are_one_clear_error():
    raw = preset("quick")
    raw["study"] |= {"confirm_first_seed": 2001}
    with pytest.raises(ConfigError, match="seed 2001 is both study 0's"):
        StudyConfig.from_dict(raw)
    raw["study"] |= {"confirm_first_seed": 1, "confirm_seeds": 2}
    with pytest.raises(ConfigError, match="must differ"):
        StudyConfig.from_dict(raw)
    with pytest.raises(ConfigError, match="studies"):
        StudyConfig.from_dict(preset("quick")).with_changes(studies=0)


# --- old study folders ---


def test_a_format_1_state_loads_as_one_unconfirmed_study_and_others_are_refused(tmp_path):
    old = {"format": 1, "name": "s", "split": {}, "trials": [{"label": "constant-t0"}]}
    old |= {"winners": {"constant": {"label": "constant-t0"}}, "lr_find": None}
    old["phases"] = {"lr-find": {"done": True}, "trials": {"runs": 1}}
    (tmp_path / "study.json").write_text(json.dumps(old))
    state = read_state(tmp_path)
    assert state.legacy_format == 1 and state.phases == {"lr-find": {"done": True}}
    assert state.studies[0].winners == old["winners"]
    assert state.studies[0].trials == old["trials"]
    assert state.studies[0].phases == {"trials": {"runs": 1}}
    (tmp_path / "study.json").write_text(json.dumps(old | {"format": 7}))
    with pytest.raises(ResultsError, match="format 2 .*format 7"):
        read_state(tmp_path)


def test_a_state_round_trips_and_a_format_1_winner_reads_as_unconfirmed(tmp_path):
    from clrbench.study.report import recorded_winners
    from clrbench.study.state import DrawState, write_state

    winner = {"label": "constant-k+1", "index": 2, "params": {"lr": 0.2}, "confirmed": True}
    winner |= {"validation_accuracy": math.nan, "confirmation_mean": 0.98, "source": "re-check"}
    state = StudyState(name="s", split={"dataset": "mnist"}, lr_find=None)
    state.studies.append(DrawState(index=0, winners={"constant": winner}))
    write_state(tmp_path, state)
    text = (tmp_path / "study.json").read_text()
    assert "NaN" not in text and '"validation_accuracy": null' in text  # one JSON convention
    back = read_state(tmp_path)
    assert back.name == "s" and back.studies[0].index == 0
    (read,) = recorded_winners(back.studies[0].winners).values()
    assert math.isnan(read["validation_accuracy"]) and read["confirmation_mean"] == 0.98
    old = recorded_winners({"constant": {"label": "constant-t0", "index": 0, "params": {},
                                         "validation_accuracy": 0.97}})["constant"]  # fmt: skip
    assert (old["confirmed"], old["source"]) == (False, "trials")
    assert math.isnan(old["confirmation_mean"])


def test_a_format_1_study_reports_without_confirmation(tmp_path):
    import tomli_w

    from clrbench.study.report import load_config

    quick = StudyConfig.from_dict(preset("quick"))
    (tmp_path / "study.toml").write_text(tomli_w.dumps(quick.to_dict()))
    config = load_config(tmp_path, StudyState(legacy_format=1))
    assert config.confirm_top == 0 and config.studies == 1
    assert load_config(tmp_path, StudyState()).confirm_top == 2


def test_fresh_seeds_give_each_study_its_own_final_seeds():
    from clrbench.study.protocol import draw_record, final_experiment

    one = StudyConfig.from_dict(preset("quick"))
    shared = one.with_changes(studies=3)
    fresh = one.with_changes(studies=3, fresh_seeds=True)
    finals = [fresh.final_seeds(i) for i in range(3)]
    assert finals[0] == shared.final_seeds(0) == shared.final_seeds(2)  # study 0 unchanged
    assert finals[2][0] == one.first_seed + 2 * STUDY_SEED_STRIDE
    assert len(set().union(*map(set, finals))) == 3 * one.seeds  # no seed twice
    assert fresh.draw(2).first_seed == finals[2][0]
    winners = {f.label: plan_trials(one)[0].params for f in one.families[:1]}
    assert final_experiment(fresh.draw(2), winners, None).seeds == finals[2]
    assert draw_record(fresh, 2, []).seeds["final"] == list(finals[2])
    assert draw_record(shared, 2, []).seeds["final"] == list(shared.final_seeds(0))
    with pytest.raises(ConfigError, match="fresh_seeds must be true or false"):
        one.with_changes(fresh_seeds=1)
    with pytest.raises(ConfigError, match="final seeds per study overlap the next study's"):
        one.with_changes(studies=2, fresh_seeds=True, seeds=10_001)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"until_decided": True}, "--until-decided needs --max-studies N"),
        ({"max_studies": 5}, "--max-studies is the limit of --until-decided: give both"),
        ({"until_decided": True, "max_studies": 2}, "--max-studies must be an integer >= 3"),
        ({"until_decided": True, "max_studies": 5, "studies": 3}, "drop --studies"),
    ],
)
def test_until_decided_options_are_one_clear_error(options, message):
    from clrbench.study.resolve import resolve_study

    with pytest.raises(ConfigError, match=message):
        resolve_study(preset="quick", **options)
    config = resolve_study(preset="quick", until_decided=True, max_studies=6)
    assert (config.until_decided, config.studies) == (True, 6)
