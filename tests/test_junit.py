"""`check --junit FILE`: the gate as JUnit XML, read back with junitparser (the parser CI
reporters are built like) and with ElementTree, on synthetic results folders (no training)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from conftest import load_synthetic

from clrbench.cli.main import main
from clrbench.gate.baseline import config_hash

junitparser = pytest.importorskip("junitparser")

LABELS = ("constant", "clr-iter")
METRICS = ("final_test_accuracy", "best_test_accuracy", "final_train_loss")
# per schedule compared: runs complete, run status; for the whole check: configuration,
# something compared
CHECKS_PER_SCHEDULE, WHOLE_CHECKS = 2, 2


def synthetic(out: Path, seeds: int, outcomes: dict | None = None) -> Path:
    """2 schedules x ``seeds`` seeds x 2 epochs of 10 steps."""
    return load_synthetic().write_synthetic_results(
        out, labels=LABELS, seeds=seeds, epochs=2, train_size=1280, outcomes=outcomes
    )


@pytest.fixture(scope="module")
def three_seeds(tmp_path_factory) -> tuple[Path, Path]:
    """A synthetic folder of 2 schedules x 3 seeds and its baseline."""
    root = tmp_path_factory.mktemp("junit")
    folder = synthetic(root / "results", seeds=3)
    baseline = root / "baseline.json"
    assert main(["baseline", str(folder), "-o", str(baseline)]) == 0
    return folder, baseline


def check(capsys, folder: Path, baseline: Path, junit: Path, *options: str) -> tuple[int, str]:
    code = main(
        ["check", str(folder), "--baseline", str(baseline), "--junit", str(junit), *options]
    )
    return code, capsys.readouterr().err


def cases(path: Path) -> dict[tuple[str, str], object]:
    """(classname, name) -> junitparser TestCase of the file's one suite."""
    document = junitparser.JUnitXml.fromfile(str(path))
    (suite,) = list(document)
    return {(case.classname, case.name): case for case in suite}


def outcome(case) -> str:
    if case.is_passed:
        return "passed"
    return "skipped" if case.is_skipped else "failed"


def counts(path: Path) -> dict[str, int]:
    found = {"passed": 0, "failed": 0, "skipped": 0}
    for case in cases(path).values():
        found[outcome(case)] += 1
    return found


def assert_ant_layout(path: Path) -> None:
    """What the JUnit schema CI tools accept requires: testsuites > testsuite, counts that
    match the cases, every case named, failure/skipped before system-out."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        testcases = suite.findall("testcase")
        assert [child.tag for child in suite] == ["properties", *["testcase"] * len(testcases)] + [
            "system-out"
        ]
        assert int(suite.get("tests")) == len(testcases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in testcases)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in testcases)
        assert suite.get("errors") == "0" and float(suite.get("time")) >= 0
        for case in testcases:
            assert case.get("classname") and case.get("name")
            tags = [child.tag for child in case]
            assert tags[:1] in ([], ["system-out"], ["failure"], ["skipped"])
            assert tags in (tags[:1], tags[:1] + ["system-out"])
        for key in ("tests", "failures", "skipped", "errors"):
            assert root.get(key) == suite.get(key)


def test_a_passing_check_is_all_passed_cases(three_seeds, tmp_path, capsys):
    folder, baseline = three_seeds
    junit = tmp_path / "check.xml"
    code, _ = check(capsys, folder, baseline, junit)
    assert code == 0
    assert_ant_layout(junit)
    found = cases(junit)
    expected = len(LABELS) * (len(METRICS) + CHECKS_PER_SCHEDULE) + WHOLE_CHECKS
    assert counts(junit) == {"passed": expected, "failed": 0, "skipped": 0}
    assert {name for (label, name) in found if label == "clr-iter"} == set(METRICS) | {
        "runs complete",
        "run status",
    }
    message = found[("clr-iter", "final_test_accuracy")].system_out
    # identical runs on the same seeds: no drop, and shown inside mnist-mlp's ±0.1 pp margin
    assert message.startswith(
        "ok (equivalent within ±0.1 pp): final_test_accuracy changed by +0.00 pp"
    )
    assert "allowed drop −0.10 pp" in message  # paired (same seeds): the 0.1 pp floor
    assert "minimum detectable drop" in message
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["test"] == "non-inferiority" and properties["margin_pp"] == "0.1"


def lower_test_accuracy(folder: Path, label: str, by: float) -> None:
    """Rewrite the epochs of every run of ``label`` with ``by`` less test accuracy."""
    for record in folder.glob("runs/*/run.json"):
        if json.loads(record.read_text())["label"] == label:
            epochs_file = record.parent / "epochs.parquet"
            epochs = pd.read_parquet(epochs_file)
            epochs["test_accuracy"] -= by
            epochs.to_parquet(epochs_file, index=False)


def test_a_regression_and_a_failed_run_are_failures(three_seeds, tmp_path, capsys):
    _, baseline = three_seeds
    folder = synthetic(tmp_path / "results", seeds=3, outcomes={("constant", 1): "failed"})
    lower_test_accuracy(folder, "clr-iter", 0.05)
    junit = tmp_path / "check.xml"
    code, _ = check(capsys, folder, baseline, junit)
    assert code == 1  # unchanged exit code: a regression
    assert_ant_layout(junit)
    found = cases(junit)
    failed = {key for key, case in found.items() if outcome(case) == "failed"}
    assert failed == {
        ("clr-iter", "final_test_accuracy"),
        ("clr-iter", "best_test_accuracy"),
        ("constant", "run status"),
    }
    expected = len(LABELS) * (len(METRICS) + CHECKS_PER_SCHEDULE) + WHOLE_CHECKS
    assert counts(junit) == {"passed": expected - 3, "failed": 3, "skipped": 0}
    (failure,) = found[("clr-iter", "final_test_accuracy")].result
    assert failure.message.startswith("fail (worse): final_test_accuracy changed by −5.00 pp")
    assert "allowed drop −0.10 pp, minimum detectable drop" in failure.message
    assert failure.text.startswith("clr-iter: final_test_accuracy fell from")
    (status,) = found[("constant", "run status")].result
    assert status.message == (
        "constant: 1 of 3 runs did not finish ok (diverged 0, failed 1); the baseline had 0 of 3"
    )


def test_too_few_seeds_are_skipped_cases(tmp_path, capsys):
    folder = synthetic(tmp_path / "results", seeds=1)
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(folder), "-o", str(baseline), "--allow-few-seeds"]) == 0
    junit = tmp_path / "check.xml"
    code, _ = check(capsys, folder, baseline, junit, "--allow-few-seeds")
    assert code == 0  # untestable is not a failure (as in the console output)
    assert_ant_layout(junit)
    checks = len(LABELS) * CHECKS_PER_SCHEDULE + WHOLE_CHECKS
    assert counts(junit) == {"passed": checks, "failed": 0, "skipped": len(LABELS) * len(METRICS)}
    (skipped,) = cases(junit)[("constant", "final_test_accuracy")].result
    assert skipped.message.startswith(
        "untested (undecided): final_test_accuracy changed by +0.00 pp"
    )
    assert skipped.message.endswith("one ok seed on each side")


def test_without_allow_few_seeds_nothing_is_written_and_nothing_lost(tmp_path, capsys):
    folder = synthetic(tmp_path / "results", seeds=1)
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(folder), "-o", str(baseline), "--allow-few-seeds"]) == 0
    junit = tmp_path / "check.xml"
    junit.write_text("an earlier report")
    code, err = check(capsys, folder, baseline, junit)
    assert code == 2 and err.count("\n") == 1 and "--allow-few-seeds" in err
    assert junit.read_text() == "an earlier report"


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_bad_junit_path_is_one_line_exit_2(where, three_seeds, tmp_path, capsys):
    folder, baseline = three_seeds
    blocker = tmp_path / "a-file"
    blocker.write_text("kept")
    junit = tmp_path if where == "folder" else blocker / "check.xml"
    code, err = check(capsys, folder, baseline, junit)
    assert code == 2 and err.count("\n") == 1 and str(junit) in err
    assert blocker.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]  # no temporary file left


def test_allowed_config_change_notes_and_one_sided_schedules(three_seeds, tmp_path, capsys):
    folder, baseline = three_seeds
    document = json.loads(baseline.read_text())
    for key in ("metrics", "runs"):
        document[key]["old-constant"] = document[key].pop("constant")
    document["experiment"]["schedule"][0]["label"] = "old-constant"
    document["config_hash"] = config_hash(document["experiment"])
    edited = tmp_path / "baseline.json"
    edited.write_text(json.dumps(document))
    junit = tmp_path / "check.xml"
    code, _ = check(capsys, folder, edited, junit)
    assert code == 1
    found = cases(junit)
    assert outcome(found[("old-constant", "schedule set")]) == "failed"
    assert outcome(found[("constant", "schedule set")]) == "failed"
    assert outcome(found[("experiment", "configuration")]) == "failed"
    code, _ = check(capsys, folder, edited, junit, "--allow-config-change")
    assert code == 0
    found = cases(junit)
    assert outcome(found[("old-constant", "schedule set")]) == "skipped"
    assert outcome(found[("constant", "schedule set")]) == "skipped"
    configuration = found[("experiment", "configuration")]
    assert outcome(configuration) == "passed"
    assert configuration.system_out.startswith("configuration changed since the baseline")
