"""The regression gate: baseline, check, its rule, CLI and summaries, on synthetic results shaped
like the small suite; real regressions and real seed noise on trained runs (slow)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SMALL_SUITE
from scipy import stats as sps
from scipy.stats import t as stats_t

from clrbench import load_results
from clrbench.cli.main import main
from clrbench.config.experiment import Experiment
from clrbench.errors import ConfigError
from clrbench.gate.baseline import METRICS, config_hash, metrics_document, read_baseline
from clrbench.gate.checker import check
from clrbench.gate.comparison import (
    compare_metric,
    comparison_level,
    critical_drop,
    detectable_drop,
    welch,
)
from clrbench.gate.messages import completeness_message, status_message
from clrbench.gate.tolerance import parse_tolerance
from clrbench.suite.runner import run_suite

# Two schedules of the ci preset (4 epochs: clr-iter ends at a cycle boundary, as there) with
# 5 seeds: enough to estimate the noise, 20 runs train in about 30 s on 2 cores.
NOISE_SUITE = {
    "experiment": SMALL_SUITE["experiment"] | {"name": "noise", "epochs": 4, "seeds": 5},
    "schedule": SMALL_SUITE["schedule"],
}


def with_rate(suite: dict, label: str, **params) -> dict:
    """A copy of ``suite`` whose schedule ``label`` has other parameters."""
    changed = copy.deepcopy(suite)
    for entry in changed["schedule"]:
        if entry["label"] == label:
            entry.update(params)
    return changed


def copy_results(source, tmp_path):
    return shutil.copytree(source, tmp_path / "results")


def make_baseline_file(results_dir, tmp_path, capsys, *options) -> Path:
    path = tmp_path / "baseline.json"
    assert main(["baseline", str(results_dir), "-o", str(path), *options]) == 0
    capsys.readouterr()
    return path


def run_check(capsys, results_dir, baseline, *options) -> tuple[int, str, str]:
    code = main(["check", str(results_dir), "--baseline", str(baseline), *options])
    out, err = capsys.readouterr()
    return code, out, err


# The folder keeps runs of an earlier experiment: `check` says so on stderr, one line per
# load (the CLI prints clrbench's ResultsWarning itself; "always": not an error here).
LEFT_OUT = pytest.mark.filterwarnings("always::clrbench.errors.ResultsWarning")


def said_left_out(err: str) -> bool:
    return "clrbench: warning: " in err and "not part of its current experiment, left out" in err


def failures(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL ")]


@pytest.fixture
def baseline(synthetic_small, tmp_path, capsys) -> Path:
    """The baseline of a synthetic folder shaped like the small suite (2 seeds: explicitly
    allowed)."""
    return make_baseline_file(synthetic_small, tmp_path, capsys, "--allow-few-seeds")


@pytest.fixture
def small_baseline(small_results, tmp_path, capsys) -> Path:
    """The trained small suite's baseline (2 seeds: explicitly allowed)."""
    return make_baseline_file(small_results, tmp_path, capsys, "--allow-few-seeds")


def run_small_check(capsys, results_dir, baseline, *options) -> tuple[int, str, str]:
    """A check of the 2-seed small suite (explicitly allowed)."""
    return run_check(capsys, results_dir, baseline, "--allow-few-seeds", *options)


# --- the baseline file ---


def test_baseline_has_configuration_statistics_and_directions(synthetic_small, baseline):
    document = json.loads(baseline.read_text())
    results = load_results(synthetic_small)
    assert document["experiment"] == results.experiment
    assert document["config_hash"] == config_hash(results.experiment)
    assert set(document["metrics"]) == {"constant", "clr-iter"}
    for label, per_metric in document["metrics"].items():
        assert document["runs"][label] | {"seeds": None} == {
            "expected": 2, "runs": 2, "ok": 2, "diverged": 0, "failed": 0, "seeds": None,
        }  # fmt: skip
        last = results.epochs[results.epochs["epoch"] == 1].set_index("run_id")
        runs = results.runs[results.runs["schedule"] == label]
        accuracy = last.loc[runs["run_id"].astype(str), "test_accuracy"].to_numpy()
        stat = per_metric["final_test_accuracy"]
        assert stat["direction"] == "higher" and stat["n"] == 2
        assert stat["mean"] == pytest.approx(accuracy.mean(), abs=1e-12)
        assert stat["std"] == pytest.approx(accuracy.std(ddof=1), abs=1e-12)
        assert per_metric["final_train_loss"]["direction"] == "lower"
        assert per_metric["best_test_accuracy"]["direction"] == "higher"


def test_baseline_is_never_overwritten_without_force(synthetic_small, baseline, capsys):
    before = baseline.read_text()
    few = "--allow-few-seeds"
    assert main(["baseline", str(synthetic_small), "-o", str(baseline), few]) == 2
    assert "--force" in capsys.readouterr().err
    assert baseline.read_text() == before
    assert main(["baseline", str(synthetic_small), "-o", str(baseline), "--force", few]) == 0


def test_config_hash_ignores_name_seeds_and_order_but_not_settings():
    base = config_hash(SMALL_SUITE)
    renamed = copy.deepcopy(SMALL_SUITE)
    renamed["experiment"] |= {"name": "other", "seeds": [5, 6, 7]}
    renamed["schedule"] = renamed["schedule"][::-1]
    assert config_hash(renamed) == base
    assert config_hash(with_rate(SMALL_SUITE, "constant", lr=0.001)) != base
    for key, value in (("epochs", 3), ("train_size", 12000), ("batch_size", 64)):
        other = copy.deepcopy(SMALL_SUITE)
        other["experiment"][key] = value
        assert config_hash(other) != base, key


# --- the rule ---


ALPHA = comparison_level("final_test_accuracy", 5)  # 1% x 0.8 over 5 schedules


def test_levels_share_a_one_percent_budget_over_the_whole_check():
    for schedules in (1, 2, 5, 9):
        total = sum(comparison_level(name, schedules) for name in METRICS) * schedules
        assert total == pytest.approx(0.01)
    assert pytest.approx(0.0016) == ALPHA


def test_critical_drop_is_scipys_one_sided_welch_test():
    rng = np.random.default_rng(0)
    for n1, n2, s1, s2 in ((5, 5, 1.0, 1.0), (5, 3, 0.5, 2.0), (10, 4, 1.0, 0.1)):
        a, b = rng.normal(0, s1, n1), rng.normal(0, s2, n2)
        allowed = critical_drop(*welch(a.std(ddof=1), n1, b.std(ddof=1), n2), ALPHA)
        for shift in (0.5 * allowed, 0.99 * allowed, 1.01 * allowed, 2 * allowed):
            current = b - b.mean() + a.mean() - shift  # worse by exactly `shift`
            p = sps.ttest_ind(a, current, equal_var=False, alternative="greater").pvalue
            assert (shift > allowed) == (p < ALPHA), (n1, n2, shift / allowed, p)


def test_detectable_drop_is_caught_four_times_in_five():
    # against scipy's non-central t, and against plain simulation of the t-test
    se, df = welch(0.003, 12, 0.003, 12)
    drop = detectable_drop(se, df, ALPHA)
    t_critical = sps.t.ppf(1 - ALPHA, df)
    assert sps.nct.sf(t_critical, df, drop / se) == pytest.approx(0.8, abs=1e-6)
    rng = np.random.default_rng(1)
    a = rng.normal(0.95, 0.003, (20_000, 12))
    b = rng.normal(0.95 - drop, 0.003, (20_000, 12))
    p = sps.ttest_ind(a, b, axis=1, equal_var=False, alternative="greater").pvalue
    assert np.mean(p < ALPHA) == pytest.approx(0.8, abs=0.015)  # 20,000 draws: SE 0.003


def test_welch_edge_cases():
    assert welch(0.0, 5, 0.0, 5) == (0.0, 8.0)
    assert all(np.isnan(welch(None, 1, None, 1)))
    # a single run borrows the other sample's std, with that sample's degrees of freedom
    assert welch(0.01, 5, None, 1) == pytest.approx((np.sqrt(0.01**2 / 5 + 0.01**2), 4))


def test_welch_a_single_first_run_borrows_the_second_samples_std_and_df():
    assert welch(None, 1, 0.01, 5) == pytest.approx((np.sqrt(0.01**2 + 0.01**2 / 5), 4))
    assert welch(None, 1, 0.02, 3) == pytest.approx((np.sqrt(0.02**2 + 0.02**2 / 3), 2))


def counts(runs: int, ok: int, diverged: int = 0, failed: int = 0, expected=None) -> dict:
    """One schedule's run counts as metrics_document writes them."""
    expected = runs if expected is None else expected
    return {"expected": expected, "runs": runs, "ok": ok, "diverged": diverged, "failed": failed}


def test_status_check_fails_a_larger_share_of_runs_not_ok_and_passes_an_equal_one():
    one_in_five = counts(5, 4, diverged=1)
    assert status_message("s", one_in_five, counts(5, 4, diverged=1)) is None  # equal share
    assert status_message("s", one_in_five, counts(5, 4, failed=1)) is None  # either status
    assert status_message("s", one_in_five, counts(10, 8, diverged=2)) is None  # 2 of 10 = 1 of 5
    assert status_message("s", counts(10, 8, failed=2), one_in_five) is None
    assert status_message("s", one_in_five, counts(5, 3, diverged=1, failed=1)) == (
        "s: 2 of 5 runs did not finish ok (diverged 1, failed 1); the baseline had 1 of 5"
    )
    assert status_message("s", counts(10, 9, diverged=1), one_in_five) is not None  # 20% > 10%
    for line in (counts(5, 4, diverged=1), counts(5, 4, failed=1)):
        assert status_message("s", counts(5, 5), line) is not None  # none before: any fails
    assert status_message("s", counts(5, 5), counts(5, 5)) is None
    assert status_message("s", counts(3, 0, diverged=3), counts(3, 0, diverged=3)) == (
        "s: no run finished ok (diverged 3, failed 0); nothing to compare"
    )


def test_completeness_check_fails_fewer_complete_runs_than_the_experiments():
    assert completeness_message("s", counts(5, 5)) is None
    assert completeness_message("s", counts(4, 4, expected=5)) == (
        "s: only 4 of the experiment's 5 runs are complete (interrupted suite?)"
    )


def test_check_reports_the_status_and_completeness_lines():
    def document(runs: dict) -> dict:
        metrics = {name: stat([0.97, 0.98, 0.99]) for name in METRICS}
        return {
            "config_hash": "h",
            "experiment": {},
            "runs": {"s": runs},
            "metrics": {"s": metrics},
        }

    baseline = document(counts(3, 3))
    assert check(document(counts(3, 3)), baseline).passed
    report = check(document(counts(3, 2, diverged=1, expected=4)), baseline)
    assert report.failures == [
        "s: only 3 of the experiment's 4 runs are complete (interrupted suite?)",
        "s: 1 of 3 runs did not finish ok (diverged 1, failed 0); the baseline had 0 of 3",
    ]


@pytest.mark.filterwarnings("always::clrbench.errors.ResultsWarning")  # CLI prints it
def test_a_missing_run_of_the_experiment_fails_the_check(synthetic_small, tmp_path, capsys):
    folder = copy_results(synthetic_small, tmp_path)
    baseline = make_baseline_file(folder, tmp_path, capsys, "--allow-few-seeds")
    victim = sorted((folder / "runs").glob("constant-*"))[0]
    shutil.rmtree(victim)
    code, out, err = run_small_check(capsys, folder, baseline)
    assert code == 1 and f"1 run of the experiment are not complete: {victim.name}" in err
    line = "FAIL constant: only 1 of the experiment's 2 runs are complete (interrupted suite?)"
    assert line in out


@pytest.mark.filterwarnings("always::clrbench.errors.ResultsWarning")  # CLI prints it
def test_a_baseline_is_refused_from_an_incomplete_suite(synthetic_small, tmp_path, capsys):
    folder = copy_results(synthetic_small, tmp_path)
    shutil.rmtree(sorted((folder / "runs").glob("clr-iter-*"))[0])
    path = tmp_path / "baseline.json"
    code = main(["baseline", str(folder), "-o", str(path), "--allow-few-seeds"])
    assert code == 2 and not path.exists()
    assert "incomplete suite (clr-iter 1/2 runs)" in capsys.readouterr().err


def stat(values, direction="higher") -> dict:
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if values.size > 1 else None
    return {"direction": direction, "mean": float(values.mean()), "std": std, "n": values.size}


def test_fail_only_beyond_the_allowed_drop():
    base = stat([0.970, 0.972, 0.968, 0.971, 0.969])
    allowed = critical_drop(*welch(base["std"], 5, base["std"], 5), ALPHA)
    for drop, fails in ((allowed - 1e-6, False), (allowed + 1e-6, True)):
        now = dict(base, mean=base["mean"] - drop)
        assert compare_metric("clr", "final_test_accuracy", base, now, ALPHA).failed is fails
    better = dict(base, mean=base["mean"] + 0.05)
    assert not compare_metric("clr", "final_test_accuracy", base, better, ALPHA).failed
    loss = stat([0.05, 0.06, 0.055], "lower")
    worse = dict(loss, mean=loss["mean"] + 0.1)
    assert compare_metric("clr", "final_train_loss", loss, worse, ALPHA).failed
    assert not compare_metric("clr", "final_train_loss", loss, worse, ALPHA, 0.11).failed


def test_zero_spread_passes_equal_means_and_one_seed_is_untested():
    base = stat([0.97, 0.97, 0.97])
    same = compare_metric("c", "final_test_accuracy", base, dict(base), ALPHA)
    assert same.verdict == "ok" and same.allowed < 1e-12
    lower = compare_metric("c", "final_test_accuracy", base, dict(base, mean=0.9699), ALPHA)
    assert lower.verdict == "fail"  # zero noise on both sides: any real drop is one
    single = stat([0.97])
    untested = compare_metric("c", "final_test_accuracy", single, stat([0.5]), ALPHA)
    assert untested.verdict == "untested" and not untested.failed


def test_equal_means_summed_in_another_order_do_not_fail_a_zero_spread_comparison():
    base = {"direction": "higher", "mean": 0.97, "std": 0.0, "n": 3}
    other_order = dict(base, mean=0.97 - 1e-15)  # the same values summed in another order
    assert not compare_metric("c", "final_test_accuracy", base, other_order, ALPHA).failed
    assert compare_metric("c", "final_test_accuracy", base, dict(base, mean=0.9699), ALPHA).failed


def paired_stat(values, seeds) -> dict:
    return stat(values) | {"values": list(values), "seeds": list(seeds)}


def test_same_seeds_are_compared_by_scipys_paired_t_test():
    rng = np.random.default_rng(3)
    before = rng.normal(0.95, 0.003, 8)
    after = before + rng.normal(-0.002, 0.0005, 8)  # each seed moved a little, coherently
    base, now = paired_stat(before, range(8)), paired_stat(after, range(8))
    c = compare_metric("s", "final_test_accuracy", base, now, ALPHA)
    assert c.paired and c.df == 7 and c.failed
    p = sps.ttest_rel(before, after, alternative="greater").pvalue
    assert p < ALPHA and c.worse_by > c.allowed
    # as independent samples (other seeds) the same numbers are within the seed noise
    other = paired_stat(after, range(8, 16))
    assert not compare_metric("s", "final_test_accuracy", base, other, ALPHA).failed


def test_paired_floor_lets_a_few_test_images_through():
    base = paired_stat([0.95, 0.951, 0.949], (0, 1, 2))
    images = paired_stat([0.9499, 0.9509, 0.9489], (0, 1, 2))  # every seed lost 1 image
    c = compare_metric("s", "final_test_accuracy", base, images, ALPHA)
    assert c.paired and c.se < 1e-12 and c.allowed == 0.001 and not c.failed
    points = paired_stat([0.948, 0.949, 0.947], (0, 1, 2))  # every seed lost 0.2 pp
    assert compare_metric("s", "final_test_accuracy", base, points, ALPHA).failed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("final_test_accuracy:0.5pp", ("final_test_accuracy", 0.005)),
        ("final_test_accuracy:-0.5pp", ("final_test_accuracy", 0.005)),
        ("final_test_accuracy:+1pp", ("final_test_accuracy", 0.01)),  # the sign is optional
        ("best_test_accuracy: 0.3 pp", ("best_test_accuracy", 0.003)),
        ("final_test_accuracy:10pp", ("final_test_accuracy", 0.10)),
        ("final_train_loss:+0.02", ("final_train_loss", 0.02)),
        ("final_train_loss:0.02", ("final_train_loss", 0.02)),
    ],
)
def test_parse_tolerance(text, expected):
    assert parse_tolerance(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("final_test_accuracy:0.5", "needs its unit"),  # was read as 50 pp
        ("final_test_accuracy:25", "needs its unit"),  # was read as 2,500 pp
        ("final_test_accuracy:25pp", "would switch the gate off"),
        ("best_test_accuracy:10.5pp", "would switch the gate off"),
        ("final_train_loss:2", "would switch the gate off"),
        ("final_train_loss:+2pp", "'pp' is for accuracies"),
        ("accuracy:-0.5pp", "expected METRIC:AMOUNT"),  # unknown metric
        ("final_test_accuracy", "expected METRIC:AMOUNT"),
        ("final_test_accuracy:lots", "is not an amount"),
        ("final_test_accuracy:nanpp", "is not an amount"),
        ("final_test_accuracy:0.5%", "is not an amount"),
    ],
)
def test_bad_tolerance_is_one_line_exit_2(text, reason, synthetic_small, baseline, capsys):
    with pytest.raises(ConfigError, match=reason):
        parse_tolerance(text)
    code, out, err = run_small_check(capsys, synthetic_small, baseline, "--tolerance", text)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("clrbench: error: --tolerance")


# --- the check on real results ---


def test_check_passes_on_the_results_its_baseline_was_made_from(synthetic_small, baseline, capsys):
    code, out, err = run_small_check(capsys, synthetic_small, baseline)
    assert code == 0, out
    assert "check passed: 2 schedules" in out
    assert (
        "same seeds as the baseline: fewer than 3 to pair, compared as independent samples "
        "(Welch); largest per-seed change of final_test_accuracy 0.00 pp" in out
    )
    assert failures(out) == [] and err == ""


def test_check_writes_nothing_but_appends_the_step_summary(
    synthetic_small, baseline, tmp_path, capsys, monkeypatch
):
    results = copy_results(synthetic_small, tmp_path)
    summary = tmp_path / "step-summary.md"
    summary.write_text("## earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p != summary}
    code, out, _ = run_small_check(capsys, results, baseline, "--markdown")
    assert code == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p != summary} == before
    assert out.startswith("### clrbench check: passed")
    header = "| schedule | metric | baseline | current | change | allowed | detectable | result "
    assert header + "| outcome |" in out
    rows = [line for line in out.splitlines() if line.startswith("| constant ")]
    assert len(rows) == len(METRICS) and all("| ok |" in row for row in rows)
    # 2 seeds: a drop of 0.46 pp would pass, so nothing is shown either way
    assert all(row.endswith("| ok | undecided |") for row in rows)
    assert summary.read_text() == "## earlier step\n" + out + "\n"
    run_small_check(capsys, results, baseline)  # plain output: the summary is appended as well
    assert summary.read_text().count("### clrbench check: passed") == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such baseline file"),
        ("{not json", "cannot read baseline"),
        ('{"format": "clrbench-baseline/1"}', "not a clrbench baseline"),
        ("[]", "not a clrbench baseline"),
    ],
)
def test_missing_or_corrupt_baseline_is_one_line_exit_2(
    content, message, synthetic_small, tmp_path, capsys
):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_small_check(capsys, synthetic_small, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_edited_baseline_is_refused(baseline, capsys, synthetic_small):
    document = json.loads(baseline.read_text())
    document["experiment"]["experiment"]["epochs"] = 3  # no longer matches its hash
    baseline.write_text(json.dumps(document))
    code, _, err = run_small_check(capsys, synthetic_small, baseline)
    assert code == 2 and "'config_hash' does not match" in err
    document["metrics"]["constant"]["final_test_accuracy"]["mean"] = "high"
    document["experiment"]["experiment"]["epochs"] = 2
    baseline.write_text(json.dumps(document))
    code, _, err = run_small_check(capsys, synthetic_small, baseline)
    assert code == 2 and "constant.final_test_accuracy needs" in err


@pytest.mark.parametrize("make", [lambda p: p, lambda p: p / "missing"])
def test_no_results_is_one_line_exit_2(make, baseline, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_small_check(capsys, make(empty), baseline)
    assert code == 2 and out == "" and err.count("\n") == 1


def test_missing_and_new_schedules_are_reported(synthetic_small, baseline, capsys):
    document = json.loads(baseline.read_text())
    for key in ("metrics", "runs"):
        document[key]["old-constant"] = document[key].pop("constant")
    document["experiment"]["schedule"][0]["label"] = "old-constant"
    document["config_hash"] = config_hash(document["experiment"])
    baseline.write_text(json.dumps(document))
    code, out, _ = run_small_check(capsys, synthetic_small, baseline)
    assert code == 1
    assert "FAIL old-constant: in the baseline but not in the results" in out
    assert "FAIL constant: new schedule, not in the baseline (not checked)" in out
    code, out, _ = run_small_check(capsys, synthetic_small, baseline, "--allow-config-change")
    assert code == 0 and "note: old-constant: in the baseline but not in the results" in out


def test_nothing_compared_is_a_failure(synthetic_small, baseline, capsys):
    document = json.loads(baseline.read_text())
    for key in ("metrics", "runs"):
        document[key] = {f"old-{label}": v for label, v in document[key].items()}
    for entry in document["experiment"]["schedule"]:
        entry["label"] = f"old-{entry['label']}"
    document["config_hash"] = config_hash(document["experiment"])
    baseline.write_text(json.dumps(document))
    code, out, _ = run_small_check(capsys, synthetic_small, baseline, "--allow-config-change")
    assert code == 1
    assert failures(out) == [
        "FAIL nothing was compared: no schedule has ok runs both here and in the baseline"
    ]


def test_every_current_run_diverged_fails_even_when_the_baseline_did_too(synthetic_small):
    current = metrics_document(load_results(synthetic_small))
    diverged = copy.deepcopy(current)
    for label in diverged["runs"]:
        diverged["runs"][label] |= {"ok": 0, "diverged": 2}
        for stat in diverged["metrics"][label].values():
            stat |= {"mean": None, "std": None, "n": 0, "values": [], "seeds": []}
    report = check(diverged, diverged)
    assert report.failures == [
        "constant: no run finished ok (diverged 2, failed 0); nothing to compare",
        "clr-iter: no run finished ok (diverged 2, failed 0); nothing to compare",
        "nothing was compared: no schedule has ok runs both here and in the baseline",
    ]
    assert check(current, diverged).failures[-1].startswith("nothing was compared")


def test_fewer_than_three_seeds_refused_unless_allowed(synthetic_small, tmp_path, capsys):
    path = tmp_path / "few.json"
    assert main(["baseline", str(synthetic_small), "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 3 seeds per schedule" in err
    assert "constant (2 seeds)" in err and not path.exists()
    make_baseline_file(synthetic_small, tmp_path, capsys, "--allow-few-seeds")
    code, out, err = run_check(capsys, synthetic_small, tmp_path / "baseline.json")
    assert code == 2 and out == "" and "--allow-few-seeds" in err and err.count("\n") == 1
    code, out, _ = run_small_check(capsys, synthetic_small, tmp_path / "baseline.json")
    assert code == 0
    assert "note: constant: n = 2 vs 2 seeds: no useful statistical power" in out


def test_console_markdown_and_json_state_the_power(synthetic_small, baseline, capsys):
    code, text, _ = run_small_check(capsys, synthetic_small, baseline)
    _, table, _ = run_small_check(capsys, synthetic_small, baseline, "--markdown")
    code_json, raw, _ = run_small_check(capsys, synthetic_small, baseline, "--json")
    assert code == code_json == 0
    report = json.loads(raw)
    assert report["verdict"] == "passed" and report["false_alarm"] == 0.01
    entries = report["comparisons"]
    assert {(e["schedule"], e["metric"]) for e in entries} == {
        (label, name) for label in ("constant", "clr-iter") for name in METRICS
    }
    document = metrics_document(load_results(synthetic_small))
    for e in entries:
        stat = document["metrics"][e["schedule"]][e["metric"]]
        assert e["baseline"] == e["current"] == {"mean": stat["mean"], "sd": stat["std"], "n": 2}
        assert e["difference"] == 0.0 and e["verdict"] == "ok"
        assert e["test"] == "welch"  # 2 seeds: too few to pair
        assert 0 < e["allowed_drop"] < e["minimum_detectable_drop"]
        if e["metric"] == "final_test_accuracy":
            shown = f"{e['minimum_detectable_drop'] * 100:.2f} pp"
            assert shown in next(
                line
                for line in text.splitlines()
                if line.startswith(e["schedule"] + " ") and "final_test" in line
            )
            assert f"| {shown} | ok |" in table


def test_committed_ci_baseline_matches_the_ci_preset():
    """A change to the ci preset needs a new reports/baseline-ci.json (the message says how)."""
    from clrbench.config.presets import PRESETS

    baseline = read_baseline(REPO / "reports/baseline-ci.json")
    preset = Experiment.from_dict(PRESETS["ci"]).to_dict()
    assert baseline["config_hash"] == config_hash(preset), (
        "the ci preset changed: python -m clrbench run --preset ci --out results/ci --no-report "
        "&& python -m clrbench baseline results/ci -o reports/baseline-ci.json --force"
    )
    seeds = len(preset["experiment"]["seeds"])
    assert baseline["format"] == "clrbench-baseline/2"
    assert all(r["ok"] == r["runs"] == seeds >= 3 for r in baseline["runs"].values())


@pytest.mark.slow  # a new interpreter
def test_check_does_not_import_tensorflow(synthetic_small, baseline):
    code = (
        "import sys; from clrbench.cli.main import main; "
        f"code = main(['check', {str(synthetic_small)!r}, '--baseline', {str(baseline)!r}, "
        "'--allow-few-seeds']); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
        "raise SystemExit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


# --- real regressions and real noise (training) ---


@LEFT_OUT
@pytest.mark.slow
def test_rate_divided_by_100_fails_naming_the_schedule(
    small_results, small_baseline, tmp_path, capsys, mnist_dir
):
    baseline = small_baseline
    results = copy_results(small_results, tmp_path)  # clr-iter's runs are reused as they are
    worse = Experiment.from_dict(with_rate(SMALL_SUITE, "constant", lr=0.001))
    assert run_suite(worse, results, jobs=2, data_dir=str(mnist_dir)).trained == 2
    code, out, err = run_small_check(capsys, results, baseline)
    assert code == 1 and said_left_out(err)
    assert failures(out)[0] == (
        "FAIL configuration changed since the baseline: constant.lr 0.1 -> 0.001 (make a new "
        "baseline, or pass --allow-config-change to compare anyway)"
    )
    code, out, err = run_small_check(capsys, results, baseline, "--allow-config-change")
    assert code == 1 and said_left_out(err)
    lines = failures(out)
    assert lines and all(line.startswith("FAIL constant: ") for line in lines)
    accuracy = next(line for line in lines if "final_test_accuracy" in line)
    assert "final_test_accuracy fell from " in accuracy and "more than the allowed" in accuracy
    assert "one-sided Welch test at 0.40% false alarm" in accuracy and "n = 2 vs 2" in accuracy
    assert "note: constant: n = 2 vs 2 seeds: no useful statistical power" in out


@LEFT_OUT
@pytest.mark.slow
def test_diverged_runs_fail(small_results, small_baseline, tmp_path, capsys, mnist_dir):
    baseline = small_baseline
    results = copy_results(small_results, tmp_path)
    # weights overflow at the first update, the loss is NaN at step 1 (lr=1e4 only kills the
    # ReLUs: Keras clips the probabilities, so that loss stays finite)
    exploding = Experiment.from_dict(with_rate(SMALL_SUITE, "constant", lr=1e20))
    outcome = run_suite(exploding, results, jobs=2, data_dir=str(mnist_dir))
    assert {r.status for r in outcome.records.values() if r.label == "constant"} == {"diverged"}
    code, out, err = run_small_check(capsys, results, baseline, "--allow-config-change")
    assert code == 1 and said_left_out(err)
    assert "FAIL constant: no run finished ok (diverged 2, failed 0); nothing to compare" in out


@pytest.fixture(scope="module")
def noise_results(tmp_path_factory, mnist_dir):
    """The noise suite trained twice: seeds 0-4 and seeds 5-9."""
    folders = []
    for seeds in ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9]):
        suite = copy.deepcopy(NOISE_SUITE)
        suite["experiment"]["seeds"] = seeds
        out = tmp_path_factory.mktemp("noise") / "results"
        outcome = run_suite(Experiment.from_dict(suite), out, jobs=2, data_dir=str(mnist_dir))
        assert not outcome.failed
        folders.append(out)
    return folders


@pytest.mark.slow
def test_other_seeds_are_not_a_regression(noise_results, tmp_path, capsys):
    first, second = noise_results
    baseline = make_baseline_file(first, tmp_path, capsys)
    code, out, _ = run_check(capsys, second, baseline)
    assert code == 0, out
    assert "seeds differ from the baseline's" in out
    # with room to spare: no comparison uses half of what it is allowed (0.26 when written)
    report = check(metrics_document(load_results(second)), read_baseline(baseline))
    assert len(report.comparisons) == 2 * len(METRICS)
    worst = max(c.worse_by / c.allowed for c in report.comparisons)
    assert worst < 0.5, [(c.schedule, c.metric, c.worse_by, c.allowed) for c in report.comparisons]


@LEFT_OUT
@pytest.mark.slow
def test_rate_divided_by_100_fails_against_other_seeds_too(
    noise_results, tmp_path, capsys, mnist_dir
):
    baseline = make_baseline_file(noise_results[0], tmp_path, capsys)
    suite = with_rate(NOISE_SUITE, "clr-iter", base_lr=0.0002, max_lr=0.002)
    suite["experiment"]["seeds"] = [5, 6, 7, 8, 9]
    results = copy_results(noise_results[1], tmp_path)
    run_suite(Experiment.from_dict(suite), results, jobs=2, data_dir=str(mnist_dir))
    code, out, err = run_check(capsys, results, baseline, "--allow-config-change")
    assert said_left_out(err)  # the copied clr-iter runs of the old rates stay in the folder
    assert code == 1
    assert failures(out) and all(line.startswith("FAIL clr-iter: ") for line in failures(out))


@pytest.mark.slow
def test_half_point_regression_is_caught_against_the_committed_baseline(
    tmp_path, capsys, mnist_dir
):
    """A genuine change: sine-exp's base rate 0.02 -> 0.005 costs it about 0.5 pp of final
    test accuracy (measured: 93.11% over seeds 20-27 vs the baseline's 93.57%). Trained on
    new seeds (20-27, the baseline has 0-19), like another machine; only that schedule."""
    from clrbench.config.presets import PRESETS

    suite = copy.deepcopy(PRESETS["ci"])
    suite["schedule"] = [s for s in suite["schedule"] if s["label"] == "sine-exp"]
    suite["schedule"][0]["base_lr"] = 0.005
    suite["experiment"]["seeds"] = list(range(20, 28))
    results = tmp_path / "results"
    outcome = run_suite(Experiment.from_dict(suite), results, jobs=2, data_dir=str(mnist_dir))
    assert not outcome.failed
    committed = REPO / "reports/baseline-ci.json"
    code, out, _ = run_check(capsys, results, committed, "--allow-config-change", "--json")
    assert code == 1
    report = json.loads(out)
    accuracy = next(c for c in report["comparisons"] if c["metric"] == "final_test_accuracy")
    assert accuracy["schedule"] == "sine-exp" and accuracy["verdict"] == "fail"
    assert 0.003 < -accuracy["difference"] < 0.008  # roughly half a point
    assert accuracy["minimum_detectable_drop"] < 0.005
    code, out, _ = run_check(capsys, results, committed, "--allow-config-change")
    assert code == 1
    mean = accuracy["baseline"]["mean"]  # the committed baseline's, as the report states it
    assert failures(out)[0].startswith(f"FAIL sine-exp: final_test_accuracy fell from {mean:.2%}")
    assert all(line.startswith("FAIL sine-exp: ") for line in failures(out))
    assert "note: configuration changed since the baseline: sine-exp.base_lr 0.02 -> 0.005" in out


def test_committed_baseline_against_its_own_runs_is_paired_with_the_floor():
    """Same seeds, same numbers (as on the machine that made it): paired, allowed = the floor."""
    baseline = read_baseline(REPO / "reports/baseline-ci.json")
    report = check(copy.deepcopy(baseline), baseline)
    assert report.passed and len(report.comparisons) == 4 * len(METRICS)
    for c in report.comparisons:
        assert c.paired and c.df == 19 and c.allowed == METRICS[c.metric].paired_floor
    assert "compared seed by seed (paired)" in report.notes[-1]


def _stat(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))} | {
        "n": len(values), "direction": "higher", "seeds": list(range(len(values))),
        "values": values,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("after", "outcome"),
    [
        ([0.9780, 0.9781, 0.9779, 0.9782, 0.9778], "worse"),  # −0.5 pp on every seed
        ([0.9880, 0.9881, 0.9879, 0.9882, 0.9878], "better"),
        ([0.9830, 0.9831, 0.9829, 0.9832, 0.9828], "equivalent"),  # same, within ±0.1 pp
        ([0.9830, 0.9801, 0.9859, 0.9832, 0.9828], "undecided"),  # one noisy seed each way
    ],
)
def test_gate_outcome_is_a_one_sided_test_at_its_level(after, outcome):
    from clrbench.gate.checker import comparison_json
    from clrbench.gate.comparison import compare_metric

    before = [0.9830, 0.9830, 0.9830, 0.9830, 0.9830]
    c = compare_metric(
        "clr", "final_test_accuracy", _stat(before), _stat(after), 0.004, None, 0.001
    )
    assert c.paired and c.outcome == outcome
    assert c.failed == (outcome == "worse")
    d = np.asarray(after) - np.asarray(before)
    bound = stats_t.ppf(1 - 0.004, 4) * d.std(ddof=1) / np.sqrt(5)
    # equivalence: both one-sided tests at the comparison's level inside ±0.1 pp
    assert (outcome == "equivalent") == (c.outcome != "better" and not c.failed
                                         and abs(d.mean()) + bound < 0.001)  # fmt: skip
    assert c.non_inferior == (d.mean() - bound > -0.001)
    assert comparison_json(c)["outcome"] == outcome and comparison_json(c)["margin"] == 0.001
    loss = compare_metric(
        "clr", "final_train_loss", _stat(before), _stat(after), 0.004, None, 0.001
    )
    assert loss.margin is None and loss.outcome != "equivalent"
