"""The cross-workload report (``clrbench.across.report``) and ``clrbench report`` over several
workloads: synthetic results folders written through the real store (no training) for the
files, the JSON against the page's own tables and the CLI's error paths; real tiny runs on two
workloads through ``run --workload A,B``, rendered in headless Chromium (slow)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, load_synthetic
from report_data import Tables
from test_report_render import CHROMIUM, IMAGE_PROBE

from clrbench.across import analysis as across
from clrbench.across.figures import profile_figure
from clrbench.across.report import holds_workloads, load_workloads, render_across
from clrbench.across.tables import conclusion
from clrbench.cli.main import main
from clrbench.errors import ResultsError
from clrbench.store.results import load_results

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_workload(folder: Path, dataset: str, labels: tuple[str, ...], **kwargs) -> Path:
    return load_synthetic().write_synthetic_results(
        folder, labels, seeds=3, epochs=3, train_size=1280, dataset=dataset, **kwargs
    )


@pytest.fixture(scope="module")
def holding(tmp_path_factory) -> Path:
    """What ``run --workload mnist-mlp,fashion-mnist-mlp`` writes: one results folder each.
    clr-iter diverges on one fashion seed; one-cycle and step run on one workload only."""
    base = tmp_path_factory.mktemp("workloads")
    write_workload(base / "mnist-mlp", "mnist", ("constant", "clr-iter", "one-cycle"))
    outcomes = {("clr-iter", 1): "diverged"}
    labels = ("constant", "clr-iter", "step")
    write_workload(base / "fashion-mnist-mlp", "fashion_mnist", labels, outcomes=outcomes)
    return base


@pytest.fixture(scope="module")
def rendered(holding, tmp_path_factory):
    out = tmp_path_factory.mktemp("across") / "report"
    return render_across(holds_workloads(holding), out), out


def strict_json(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path}: {constant} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def html_tables(path: Path) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(path.read_text())
    return parser.tables


def test_every_file_is_written(rendered):
    written, out = rendered
    assert set(written) == {"html", "md", "json", "csv"}
    assert written["html"] == out / "report.html" and written["json"] == out / "across.json"
    assert {p.name for p in (out / "figures").iterdir()} == {"profile.png", "differences.png"}
    html = written["html"].read_text()
    assert not re.search(r"https?://", html)  # self-contained: the figures inlined
    assert html.count("data:image/png;base64,") == 2
    assert "figures/profile.png" in written["md"].read_text()


@pytest.mark.slow  # a second whole render
def test_the_report_re_renders_in_place_from_its_compact_data(rendered, tmp_path):
    """``report <across report folder>`` with no results folder left: the same across.json and
    the same Markdown (but the line that says when it was rendered), written in place."""
    import clrbench

    written, out = rendered
    kept = tmp_path / "workloads"
    shutil.copytree(out, kept)
    assert sorted(p.name for p in (kept / "data").iterdir()) == [
        "fashion-mnist-mlp", "mnist-mlp"
    ]  # fmt: skip
    again = clrbench.report(kept)
    assert again["json"] == kept / "across.json" and not (kept / "report").exists()
    assert strict_json(kept / "across.json") == strict_json(written["json"])
    before, after = written["md"].read_text(), (kept / "report.md").read_text()

    def stable(text: str) -> list[str]:  # but when it was rendered, and where to (--out)
        return [ln for ln in text.splitlines() if "generated" not in ln and "--out" not in ln]

    assert stable(after) == stable(before)
    assert f"--out {kept}" in after


def test_workloads_are_named_by_what_they_trained(holding):
    named = load_workloads(holds_workloads(holding))
    assert list(named) == ["fashion-mnist-mlp", "mnist-mlp"]  # the holding folder, by name


def test_the_json_agrees_with_the_pages_tables(rendered):
    written, _ = rendered
    document = strict_json(written["json"])
    tables = html_tables(written["html"])
    scores = document["performance_profile"]["scores"]
    assert {row[0]: float(row[1]) for row in tables["profile"][1:]} == pytest.approx(
        scores, abs=5e-4
    )
    agreement = document["rank_agreement"]
    assert agreement["schedules"] == ["constant", "clr-iter"]
    assert agreement["left_out"] == ["step", "one-cycle"]
    w_cell = dict((row[0], row[1]) for row in tables["kendalls-w"])["Kendall's W"]
    assert float(w_cell) == pytest.approx(agreement["kendalls_w"], abs=5e-4)
    differences = pd.read_csv(written["csv"])
    assert len(differences) == len(document["differences"]) == len(tables["differences"]) - 1
    for row, cell in zip(document["differences"], tables["differences"][1:], strict=True):
        assert cell[:2] == [row["workload"], row["schedule"]]
        assert float(cell[3].replace("−", "-")) == pytest.approx(row["difference"] * 100, abs=6e-3)
        assert cell[-1] == row["verdict"] and row["verdict"].startswith(row["outcome"])
        assert row["outcome"] in ("better", "worse", "equivalent", "undecided")
    untested = [r for r in document["differences"] if r["schedule"] == "clr-iter"]
    assert {r["verdict"] for r in untested} >= {
        "undecided: cannot test, too few seeds (n = 2 vs 3; need 3 each)"
    }
    assert document["performance_profile"]["time_unit"] == "optimizer steps"


def test_the_json_says_never_as_inf_and_undefined_as_null(rendered):
    document = strict_json(rendered[0]["json"])
    fashion = [r for r in document["differences"] if r["workload"] == "fashion-mnist-mlp"]
    assert any(r["p_value"] is None for r in fashion)  # 2 seeds: not tested
    rho = document["performance_profile"]["rho"]
    assert {r["tau"] for r in rho} == {float(t) for t in across.TAU_GRID}


def test_the_conclusion_counts_workloads_and_states_its_conditions(rendered):
    markdown = rendered[0]["md"].read_text()
    assert "each schedule at one tuning of its preset rates" in markdown
    assert "of the 2 workloads it ran on" in markdown
    assert "counted in optimizer steps" in markdown


def test_tied_profile_scores_give_each_schedule_its_own_counts(holding):
    """a (ratios 1 and 3) and b (2 and 2) tie at 2/3 but differ in how often they are fastest
    and within 2×: each gets its counts (the sentence gave a's to both)."""
    steps = pd.DataFrame(
        [("w1", "a", 100.0), ("w1", "b", 200.0), ("w1", "c", math.inf)]
        + [("w2", "a", 300.0), ("w2", "b", 200.0), ("w2", "c", 100.0)],
        columns=["workload", "schedule", "steps"],
    )
    analysis = across.analyse(load_workloads(holds_workloads(holding)))
    tied = replace(analysis, workloads=["w1", "w2"], profile=across.performance_profile(steps))
    assert conclusion(tied, {"w1": 3, "w2": 3})[-1] == (
        "Time to target, counted in optimizer steps: the best performance-profile score is a "
        "and b's, 0.67 (a: fastest on 1 of 2 workloads, within 2× on 1 of 2; b: fastest on 0 "
        "of 2 workloads, within 2× on 2 of 2; 1 = fastest everywhere)."
    )


def test_the_profile_legend_carries_each_score():
    steps = pd.DataFrame(
        [("w1", "a", 100.0), ("w1", "b", 200.0), ("w2", "a", math.inf), ("w2", "b", 50.0)],
        columns=["workload", "schedule", "steps"],
    )
    profile = across.performance_profile(steps)
    figure = profile_figure(profile, {"a": (0.5, 0.1, 0.3), "b": (0.8, 0.7, 0.2)})
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    # a: ratios 1, inf -> 3 / 2 / 3 = 0.5; b: 2, 1 -> (2 + 3) / 2 / 3 = 0.83
    assert labels == ["a (score 0.50)", "b (score 0.83)"]


def test_a_workload_at_its_defaults_uses_its_own_target(holding):
    results = load_results(holding / "fashion-mnist-mlp")
    assert across.workload_target(results)[1].startswith("data-driven")  # a 1,280-image run
    defaults = {"experiment": {"dataset": "fashion_mnist", "epochs": 25, "batch_size": 128}}
    target, source = across.workload_target(replace(results, experiment=defaults))
    assert (target, source) == (0.89, "fashion-mnist-mlp's own target")


def test_the_single_report_uses_the_same_target_as_the_cross_report(holding):
    from clrbench.reporting.render import analyse

    results = load_results(holding / "fashion-mnist-mlp")
    assert analyse(results).target == across.workload_target(results)[0]
    defaults = {"experiment": {"dataset": "fashion_mnist", "epochs": 25, "batch_size": 128}}
    at_defaults = analyse(replace(results, experiment=defaults))
    assert (at_defaults.target, at_defaults.target_source) == (
        0.89,
        "fashion-mnist-mlp's own target",
    )
    assert analyse(results, target=0.5).target_source == "set by --target"


def test_a_diverged_seed_counts_as_never_in_the_median_steps(holding):
    results = load_results(holding / "fashion-mnist-mlp")
    times = across.schedule_times(results, 0.9).set_index("schedule")
    assert times.loc["clr-iter", "reached"] == 2 and times.loc["clr-iter", "runs"] == 3
    assert math.isfinite(times.loc["clr-iter", "steps"])  # 2 of 3 reached: the median did
    never = across.schedule_times(results, 0.999).set_index("schedule")
    assert (never["steps"] == math.inf).all() and (never["reached"] == 0).all()


def test_two_folders_of_one_workload_are_refused(holding, tmp_path):
    twin = shutil.copytree(holding / "mnist-mlp", tmp_path / "again")
    with pytest.raises(ResultsError, match="workload mnist-mlp is also in"):
        load_workloads([holding / "mnist-mlp", twin])


def test_a_baseline_not_in_every_workload_is_refused(holding):
    named = load_workloads(holds_workloads(holding))
    with pytest.raises(ResultsError, match="'step' not in results"):
        across.analyse(named, "step")


@pytest.mark.parametrize("case", ["one workload", "no common schedule"])
def test_the_edges_render_and_say_what_cannot_be_tested(holding, tmp_path, case):
    folders = [holding / "mnist-mlp"]
    if case == "no common schedule":
        folders.append(write_workload(tmp_path / "mnist1d", "mnist1d", ("step",)))
    written = render_across(folders, tmp_path / "report")
    document = strict_json(written["json"])
    agreement = document["rank_agreement"]
    assert agreement["kendalls_w"] is None and agreement["status"].startswith("cannot test")
    assert agreement["taus"] == []
    lead = written["md"].read_text().split("## Reproduce")[0]
    assert "cannot test" in lead
    if case == "no common schedule":
        assert document["baseline"] is None and document["differences"] == []
        assert document["performance_profile"]["scores"] == {}
        assert agreement["left_out"] == ["constant", "clr-iter", "one-cycle", "step"]
        page = written["md"].read_text()
        assert "None" not in page and "no schedule is in every workload" in page.lower()
    else:
        assert document["baseline"] == "constant"
        profiled = {"constant", "clr-iter", "one-cycle"}
        assert set(document["performance_profile"]["scores"]) == profiled


# --- the command line ---


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clrbench: error: "), err
    return err[0]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--target", "0.9"], "--target is for one workload's report"),
        (["--baseline-schedule", "one-cycle"], "baseline schedule 'one-cycle' not in results"),
        (["--format", "pdf"], "--format must be one or more of html,md"),
    ],
)
def test_cli_refuses_with_one_line_and_exit_2_writing_nothing(
    holding, tmp_path, capsys, extra, expected
):
    folder = Path(shutil.copytree(holding, tmp_path / "workloads"))
    before = files_under(folder)
    assert main(["report", str(folder), *extra]) == 2
    assert expected in one_error_line(capsys)
    assert files_under(folder) == before and not (folder / "report").exists()


def test_cli_needs_out_for_several_folders(holding, tmp_path, capsys):
    folders = [str(holding / "mnist-mlp"), str(holding / "fashion-mnist-mlp")]
    assert main(["report", *folders]) == 2
    assert "--out is required" in one_error_line(capsys)
    assert not (holding / "mnist-mlp" / "report").exists()


@pytest.mark.parametrize("bad", ["missing", "not-results", "empty-runs", "twin"])
def test_cli_refuses_a_bad_folder_among_several(holding, tmp_path, capsys, bad):
    folder = tmp_path / bad
    if bad == "not-results":
        folder.mkdir()
    elif bad == "empty-runs":
        (folder / "runs").mkdir(parents=True)
    elif bad == "twin":
        shutil.copytree(holding / "mnist-mlp", folder)
    out = tmp_path / "out"
    assert main(["report", str(holding / "mnist-mlp"), str(folder), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(folder) in line
    assert not out.exists()


def test_cli_renders_several_folders_and_the_holding_folder(holding, tmp_path, capsys):
    out = tmp_path / "out"
    folders = [str(holding / "mnist-mlp"), str(holding / "fashion-mnist-mlp")]
    assert main(["report", *folders, "--out", str(out), "--format", "md"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / n) for n in ("report.md", "across.json", "across.csv")]
    folder = Path(shutil.copytree(holding, tmp_path / "workloads"))
    assert main(["report", str(folder), "--format", "html"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == str(folder / "report" / "report.html")


def test_cli_keeps_the_single_folder_report(holding, tmp_path, capsys):
    assert main(["report", str(holding / "mnist-mlp"), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / n) for n in ("report.html", "report.md", "summary.csv")]


# --- real runs on two workloads (slow) ---

FIGURE_PROBE = """<script>addEventListener("load", () => document.body.setAttribute(
  "data-figures", [...document.querySelectorAll("figure")].map(f => f.id + "=" +
  f.querySelector("img").naturalWidth + "x" + f.getBoundingClientRect().height).join(",")));
</script></body>"""


def _chromium(flags: list[str], *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        command = [*flags, f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_run_on_two_workloads_writes_a_cross_report_that_renders(mnist_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "results"
    command = [sys.executable, "-m", "clrbench", "run", "--workload",
               "mnist-mlp,fashion-mnist-mlp", "--epochs", "1", "--train-size", "640",
               "--seeds", "3", "--schedules", "constant,clr-iter", "--jobs", "2",
               "--out", str(out), "--quiet"]  # fmt: skip
    env = os.environ | {"CLRBENCH_DATA_DIR": str(mnist_dir), "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stderr
    report = out / "report"
    document = strict_json(report / "across.json")
    assert [w["name"] for w in document["workloads"]] == ["mnist-mlp", "fashion-mnist-mlp"]
    assert all(w["target_source"].startswith("data-driven") for w in document["workloads"])
    assert document["rank_agreement"]["schedules"] == ["constant", "clr-iter"]
    tables = html_tables(report / "report.html")
    scores = {row[0]: float(row[1]) for row in tables["profile"][1:]}
    assert scores == pytest.approx(document["performance_profile"]["scores"], abs=5e-4)
    assert all(0 <= score <= 1 for score in scores.values())
    for row, cell in zip(document["summary"], tables["times"][1:], strict=True):
        assert cell[:3] == [row["workload"], row["schedule"], f"{row['reached']}/{row['runs']}"]
    assert len(tables["differences"]) == 1 + 2  # clr-iter vs constant on each workload

    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1280,4000"]  # fmt: skip
    html = (report / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", IMAGE_PROBE.replace("</body>", FIGURE_PROBE)))
    dom = _chromium(flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    figures = re.search(r'data-figures="([^"]*)"', dom)
    assert figures, "figure probe did not run"
    shown = dict(entry.split("=") for entry in figures.group(1).split(","))
    width, height = shown["figure-profile"].split("x")
    assert int(width) > 0 and float(height) > 100, shown  # the profile drawn, on the page
    for schedule, score in document["performance_profile"]["scores"].items():
        assert f'{schedule}</td><td class="num">{score:.3f}</td>' in dom
    assert "Performance profile of steps to target" in dom
    shot = tmp_path / "shot.png"
    _chromium(flags, f"--screenshot={shot}", (report / "report.html").as_uri())
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200


def test_each_workload_is_decided_at_its_own_margin(holding):
    from clrbench.across.analysis import differences

    named = holds_workloads(holding)
    from clrbench.across.report import load_workloads

    loaded = load_workloads(named)
    table = differences(loaded)
    margins = table.groupby("workload")["margin"].first().to_dict()
    assert margins == pytest.approx({"fashion-mnist-mlp": 0.0025, "mnist-mlp": 0.001})
    assert set(differences(loaded, margin_pp=0.5)["margin"]) == {0.005}  # --margin: for all


def test_the_public_api_reads_compares_and_reports_several_workloads(holding, tmp_path):
    """The folder ``run --workload A,B`` writes, through ``clrbench``: ``compare`` gives the
    cross-workload table (each workload at its own margin, Holm over all), the ``Workloads``
    record maps names to results in folder order, and ``report`` renders the cross report."""
    import clrbench
    from clrbench.across.workloads import Workloads, load

    workloads = load(holding)
    assert isinstance(workloads, Workloads) and workloads.path == holding
    assert list(workloads) == ["fashion-mnist-mlp", "mnist-mlp"]  # sorted folder names
    assert workloads["mnist-mlp"].schedules == ["constant", "clr-iter", "one-cycle"]
    assert workloads.folders == [holding / "fashion-mnist-mlp", holding / "mnist-mlp"]
    expected = across.differences(load_workloads(holds_workloads(holding)))
    for given in (holding, str(holding), workloads):
        table = clrbench.compare(given)
        pd.testing.assert_frame_equal(table, expected)
    assert set(table["workload"]) == {"mnist-mlp", "fashion-mnist-mlp"}
    assert set(clrbench.compare(workloads, margin=0.5)["margin"]) == {0.005}
    assert workloads.analysis().workloads == ["fashion-mnist-mlp", "mnist-mlp"]
    assert load(holding / "mnist-mlp") is None  # one results folder is not several workloads
    with pytest.raises(ResultsError, match="a study folder; its comparisons are clrbench.study"):
        clrbench.compare(REPO / "reports/study-mnist1d-mlp")  # its phases are not workloads
    written = clrbench.report(workloads, out=tmp_path / "across")
    assert sorted(written) == ["csv", "html", "json", "md"]
    document = strict_json(written["json"])
    assert [w["name"] for w in document["workloads"]] == ["fashion-mnist-mlp", "mnist-mlp"]
