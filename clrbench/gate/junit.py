"""The check as JUnit XML, the test-report format CI systems display (GitHub Actions test
reporters, GitLab, Jenkins, Azure Pipelines).

One ``<testcase>`` per comparison (classname = the schedule, name = the metric) whose message
states the verdict, the difference, the allowed drop and the minimum detectable drop; a
``<failure>`` for a regression, ``<skipped>`` for a comparison that cannot be tested (one ok
seed on each side). Every other check of the gate (configuration, schedule set, runs complete,
run status, something compared) is a test case of its own, so a failing check always has a
failing case. The layout follows the schema Jenkins' xUnit plugin validates against
(``junit-10.xsd``, the Ant format the other tools read): ``testsuites > testsuite >
(properties, testcase*, system-out)``, a test case's ``failure``/``skipped`` before its
``system-out``, and the counts ``tests``, ``failures``, ``errors``, ``skipped`` on both levels.
Written with the standard library's ElementTree (escaping done there) and the atomic-write
helper, so an existing file is replaced whole or not at all.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clrbench.errors import ResultsError
from clrbench.gate.checker import CheckReport, GateCheck, outcome_words
from clrbench.gate.comparison import FALSE_ALARM, POWER, Comparison
from clrbench.gate.messages import format_amount, format_value, metric_message
from clrbench.store import atomic
from clrbench.store.export import check_writable

SUITE = "clrbench check"
WHOLE_CHECK = "experiment"  # the classname of checks about the whole folder, not one schedule


def check_junit_path(path: Path) -> None:
    """ResultsError (one line) unless ``path`` can be written as a file (its folder made if
    missing, an existing file replaced); nothing is written."""
    if path.is_dir():
        raise ResultsError(f"--junit {path}: is a folder, not a file")
    try:
        check_writable(path.parent, "folder")
    except ResultsError as exc:
        raise ResultsError(f"--junit {path}: {exc}") from None


def comparison_message(c: Comparison) -> str:
    """Verdict, both sides, the difference, the allowed and the minimum detectable drop."""
    bad_sign = "−" if c.direction == "higher" else "+"
    sides = f"baseline {_side(c, c.baseline)}, current {_side(c, c.current)}"
    return (
        f"{c.verdict} ({outcome_words(c)}): {c.metric} changed by "
        f"{format_amount(c, c.difference, signed=True)} "
        f"({sides}); allowed drop {bad_sign}{format_amount(c, c.allowed)}, "
        f"minimum detectable drop {format_amount(c, c.detectable)} ({_test(c)})"
    )


def _side(c: Comparison, stat: dict[str, Any]) -> str:
    return f"{format_value(c, stat['mean'])} over n={stat['n']}"


def _test(c: Comparison) -> str:
    if c.tolerance is not None:
        return "a fixed --tolerance"
    test = "paired t-test" if c.paired else "Welch test"
    return f"one-sided {test} at {c.alpha:.2%} false alarm"


def _comparison_case(c: Comparison) -> ET.Element:
    case = ET.Element("testcase", classname=c.schedule, name=c.metric, time="0")
    message = comparison_message(c)
    if c.verdict == "fail":
        failure = ET.SubElement(case, "failure", message=message, type="regression")
        failure.text = metric_message(c)
    elif c.verdict == "untested":
        ET.SubElement(case, "skipped", message=f"{message}: one ok seed on each side")
    ET.SubElement(case, "system-out").text = message
    return case


def _check_case(check: GateCheck) -> ET.Element:
    classname = check.subject or WHOLE_CHECK
    case = ET.Element("testcase", classname=classname, name=check.name, time="0")
    if check.verdict == "fail":
        ET.SubElement(case, "failure", message=check.line or "", type=check.name)
    elif check.verdict == "untested":
        ET.SubElement(case, "skipped", message=check.line or "")
    if check.line is not None:
        ET.SubElement(case, "system-out").text = check.line
    return case


def junit_tree(report: CheckReport, results_label: str, baseline_label: str) -> ET.Element:
    """The ``<testsuites>`` element of a check: checks first, then the comparisons."""
    cases = [_check_case(c) for c in report.checks]
    cases += [_comparison_case(c) for c in report.comparisons]
    counts = {
        "tests": len(cases),
        "failures": sum(case.find("failure") is not None for case in cases),
        "errors": 0,
        "skipped": sum(case.find("skipped") is not None for case in cases),
    }
    counted = {key: str(value) for key, value in counts.items()} | {"time": "0"}
    root = ET.Element("testsuites", {"name": SUITE} | counted)
    timestamp = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    where = {"timestamp": timestamp, "hostname": socket.gethostname()}
    suite = ET.SubElement(root, "testsuite", {"name": SUITE} | where | counted)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("results", results_label),
        ("baseline", baseline_label),
        ("verdict", "passed" if report.passed else "failed"),
        ("false_alarm", f"{FALSE_ALARM:g}"),
        ("power", f"{POWER:g}"),
        ("test", "non-inferiority"),
        ("margin_pp", "none" if report.margin is None else f"{report.margin * 100:g}"),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    suite.extend(cases)
    notes = "\n".join(f"note: {line}" for line in report.notes)
    ET.SubElement(suite, "system-out").text = notes
    return root


def write_junit(
    report: CheckReport, path: str | os.PathLike[str], results_label: str, baseline_label: str
) -> Path:
    """Write the check as JUnit XML to ``path`` atomically (ResultsError when it cannot)."""
    target = Path(path)
    check_junit_path(target)
    tree = junit_tree(report, results_label, baseline_label)
    ET.indent(tree)
    data = ET.tostring(tree, encoding="utf-8", xml_declaration=True) + b"\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic.write_bytes(target, data)
    except OSError as exc:
        raise ResultsError(f"{target}: cannot write the JUnit report ({exc.strerror})") from None
