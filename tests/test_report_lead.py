"""Every report leads with the answer (issue 37): one figure and one sentence — the differences
to the baseline with their intervals — before any table; one colour per schedule or family in
every report; the study's legends off the data. Synthetic results folders and a constructed
study (``report_data``), no training; headless Chromium measures the pages (slow)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import report_data
from conftest import load_synthetic
from matplotlib.backends.backend_agg import FigureCanvasAgg
from test_report_render import CHROMIUM

from clrbench.across.report import holds_workloads, render_across
from clrbench.reporting import lead, page
from clrbench.reporting.render import analyse, render
from clrbench.store.results import load_results
from clrbench.study import figures as study_figures
from clrbench.study import report as study
from clrbench.text import signed

LABELS = ("constant", "step-decay", "clr-iter", "clr-epoch")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """The HTML and Markdown of a run, a study and a cross-workload report, by kind."""
    base = tmp_path_factory.mktemp("lead")
    synthetic = load_synthetic()
    run = synthetic.write_synthetic_results(base / "run", LABELS, seeds=3, epochs=2)
    render(load_results(run), base / "run-report")
    analysis = study.study_analysis(**report_data.study_parts(base / "study" / "final"))
    study.write_study(base / "study", analysis, base / "study-report")
    for workload, dataset in (("mnist-mlp", "mnist"), ("fashion-mnist-mlp", "fashion_mnist")):
        synthetic.write_synthetic_results(
            base / "workloads" / workload, LABELS, seeds=3, epochs=2, dataset=dataset
        )
    render_across(holds_workloads(base / "workloads"), base / "across-report")
    return {kind: base / f"{kind}-report" for kind in ("run", "study", "across")}


def answer_of(html: str) -> str:
    return re.search(r'<p class="answer" id="answer">(.*?)</p>', html, re.S).group(1)


@pytest.mark.parametrize("kind", ["run", "study", "across"])
def test_the_figure_and_the_sentence_come_before_every_table(reports, kind):
    html = (reports[kind] / "report.html").read_text()
    figure = html.index('<figure id="figure-differences" class="lead">')
    answer = html.index('id="answer"')
    assert figure < answer < html.index("<table") and figure < html.index("<h2")
    assert html.count('class="lead"') == 1
    markdown = (reports[kind] / "report.md").read_text()
    lines = markdown.splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    image = next(i for i, line in enumerate(lines) if line.startswith("!["))
    assert "figures/differences.png" in lines[image] and image < first_table
    assert (reports[kind] / "figures/differences.png").is_file()
    assert re.search(r"Figure 1\. ", html)  # the other figures keep their numbers from 1


def test_the_run_report_sentence_is_the_comparison(reports, tmp_path):
    results = load_results(reports["run"].parent / "run")
    comparison = analyse(results).comparison.sort_values("difference", ascending=False)
    html = (reports["run"] / "report.html").read_text()
    sentence = answer_of(html)
    margin = comparison["margin"].iloc[0] * 100
    opening = f"Final test accuracy minus constant&#39;s (Welch 95% CI; margin ±{margin:g} pp): "
    assert sentence.startswith(opening)
    said = [
        f"{row.schedule} {signed(row.difference * 100)} pp "
        f"({signed(row.ci_low * 100)} to {signed(row.ci_high * 100)})"
        for row in comparison.itertuples()
    ]
    assert sentence.endswith(", ".join(said) + ".")


def test_the_study_sentence_is_the_headline_and_names_the_missing_interval(reports):
    sentence = answer_of((reports["study"] / "report.html").read_text())
    assert "median over 1 study" in sentence
    assert "one study: no interval over studies" in sentence
    rows = pd.DataFrame(
        {"family": ["a", "b"], "median": [0.001, 0.004], "ci_low": [-0.001, 0.002]}
        | {"ci_high": [0.003, 0.006]}
    )
    said = lead.answer_sentence(rows, "Opening", label="family", value="median")
    assert said == "Opening: b +0.40 pp (+0.20 to +0.60), a +0.10 pp (−0.10 to +0.30)."


def test_the_lead_figure_shades_the_margin():
    rows = pd.DataFrame(
        {"schedule": ["a"], "difference": [0.004], "ci_low": [0.001], "ci_high": [0.007]}
    )
    plain = lead.differences_figure(rows, {"a": "red"}, "pp")
    banded = lead.differences_figure(rows, {"a": "red"}, "pp", margin=0.002)
    assert not plain.axes[0].patches
    (band,) = banded.axes[0].patches
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((-0.2, 0.2))


def test_the_across_sentence_goes_workload_by_workload(reports):
    sentence = answer_of((reports["across"] / "report.html").read_text())
    assert sentence.count("; on ") == 1 and "on mnist-mlp " in sentence
    assert "on fashion-mnist-mlp " in sentence


def test_every_report_gives_a_schedule_the_same_colour_whatever_the_order():
    run = page.palette(["constant", "step-decay", "clr-epoch", "clr-iter", "sine-exp"])
    study_order = page.palette(["constant", "step-decay", "clr-iter", "clr-epoch", "sine-exp"])
    few = page.palette(["clr-iter", "constant"])
    with_extras = page.palette(["constant", "clr-iter", "one-cycle", "sgdr"])
    for label in ("constant", "clr-iter"):
        assert run[label] == study_order[label] == few[label] == with_extras[label]
    assert run["clr-epoch"] == study_order["clr-epoch"] != run["clr-iter"]
    assert len(set(with_extras.values())) == 4
    assert with_extras["one-cycle"] not in run.values()  # an extra takes a spare colour


def test_the_study_legends_sit_outside_the_plot():
    config = report_data.study_config()
    scores = report_data.trial_scores(config)
    colors = page.palette(report_data.FAMILIES)
    for figure in (study_figures.trials_figure(scores, colors),):
        FigureCanvasAgg(figure).draw()
        renderer = figure.canvas.get_renderer()
        plot = figure.axes[0].get_window_extent(renderer)
        assert not figure.axes[0].get_legend()
        (legend,) = figure.legends
        box = legend.get_window_extent(renderer)
        assert box.y0 >= plot.y1 - 1  # above the plot, so on no data point


# --- in a browser --------------------------------------------------------------------------------

PROBE = """<script>addEventListener("load", () => {
  const top = e => e ? Math.round(e.getBoundingClientRect().top) : -1;
  document.body.setAttribute("data-tops", [top(document.querySelector("figure.lead img")),
    top(document.querySelector("#answer")), top(document.querySelector("table"))].join(","));
});</script></body>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("kind", ["run", "study", "across"])
def test_in_chromium_the_figure_is_above_the_first_table(reports, kind, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--window-size=1280,1600"]  # fmt: skip
    probe = tmp_path / "probe.html"
    probe.write_text((reports[kind] / "report.html").read_text().replace("</body>", PROBE))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [*flags, f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
             probe.as_uri()], capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    tops = re.search(r'data-tops="([^"]*)"', dom)
    assert tops, "the probe did not run"
    figure, answer, table = (int(v) for v in tops.group(1).split(","))
    assert 0 <= figure < answer < table
    shot = tmp_path / f"{kind}-first-screen.png"  # kept in the test's folder to look at
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([*flags, f"--user-data-dir={profile}", f"--screenshot={shot}",
                        (reports[kind] / "report.html").as_uri()], capture_output=True,
                       timeout=120)  # fmt: skip
    assert shot.stat().st_size > 10_000


def test_the_lead_figure_has_no_margin_band_where_the_workload_states_none():
    """A plug-in workload states no margin: the comparison's margin column holds None (a run of
    the example plug-in crashed on float(None) before)."""
    import pandas as pd

    from clrbench.reporting.lead import margin_of

    assert margin_of(pd.DataFrame({"margin": [None, None]})) is None
    assert margin_of(pd.DataFrame({"margin": [float("nan")]})) is None
    assert margin_of(pd.DataFrame({"margin": [0.001]})) == 0.001
    assert margin_of(pd.DataFrame({"difference": [0.1]})) is None
