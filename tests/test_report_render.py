"""The run report (``clrbench.reporting.render``) of a results folder shaped like the small suite
(synthetic: written through the real store, no training): files, self-containment, tables,
options, failed runs, CLI; in headless Chromium (slow)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_synthetic
from report_data import Tables

from clrbench.analysis import stats
from clrbench.cli.main import main
from clrbench.errors import ClrbenchError
from clrbench.reporting import prose
from clrbench.reporting import render as report
from clrbench.store.results import load_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def small(synthetic_small):
    return load_results(synthetic_small)


@pytest.fixture(scope="module")
def rendered(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return report.render(small, out), small


def html_tables(path: Path) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(path.read_text())
    return parser.tables


def test_both_reports_and_the_summary_csv_are_written(rendered):
    written, _ = rendered
    assert set(written) == {"html", "md", "csv"}
    assert all(path.is_file() and path.stat().st_size > 0 for path in written.values())
    assert written["html"].parent == written["md"].parent


def test_html_is_self_contained(rendered):
    written, _ = rendered
    html = written["html"].read_text()
    assert not re.search(r"https?://", html)
    assert "<link" not in html and "<script" not in html
    sources = re.findall(r"""\bsrc\s*=\s*["']([^"']*)""", html)
    assert len(sources) >= 5 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"url\(", html)
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


def test_markdown_image_links_resolve_to_pngs(rendered):
    written, _ = rendered
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", written["md"].read_text())
    assert len(links) >= 5
    for link in links:
        assert not link.startswith(("/", "http")), link
        target = written["md"].parent / link
        assert target.is_file() and target.read_bytes().startswith(b"\x89PNG")


def test_every_schedule_in_every_table(rendered):
    written, small = rendered
    tables = html_tables(written["html"])
    assert {"summary", "comparison", "runs"} <= set(tables)
    baseline = stats.resolve_baseline(small.schedules, None)
    for name in ("summary", "runs"):
        first_cells = {row[0] for row in tables[name][1:]} | {row[1] for row in tables[name][1:]}
        assert set(small.schedules) <= first_cells, name
    compared = {row[0] for row in tables["comparison"][1:]}
    assert compared == set(small.schedules) - {baseline}
    markdown = written["md"].read_text()
    assert all(f"| {s} |" in markdown for s in small.schedules)


def test_the_settings_table_gives_each_schedule_its_optimizer_decay_and_shape(rendered):
    """Every schedule's optimizer and its rates as the records hold them; the weight decay is
    the run's own, else its optimizer's default, and '–' for one that takes none."""
    written, small = rendered
    rows = {row[0]: row for row in html_tables(written["html"])["settings"][1:]}
    assert set(rows) == set(small.schedules)
    for label in small.schedules:
        run = small.runs[small.runs["schedule"] == label].iloc[0]
        params = json.loads(run["params"])
        assert rows[label][1] == "sgd-momentum" and rows[label][2] == "–", rows[label]
        assert rows[label][4].startswith(f"{run['schedule_name']}(")
        for key, value in params.items():
            assert f"{key}={value:g}" in rows[label][4], (key, rows[label][4])

    runs = small.runs.copy()
    runs["optimizer"] = runs["optimizer"].astype(object)
    first, second = small.schedules[0], small.schedules[1]
    runs.loc[runs["schedule"] == first, "optimizer"] = "adamw"  # its default decay: 1e-2
    runs.loc[runs["schedule"] == second, ["optimizer", "weight_decay"]] = ["adamw", 0.25]
    runs.loc[runs["schedule"] == second, "optimizer_warmup_steps"] = 47
    table = {row[0]: row for row in report.settings_table(runs, list(small.schedules))["rows"]}
    assert table[first][1:4] == ["adamw", "0.01", "–"]
    assert table[second][1:4] == ["adamw", "0.25", "47"]


def test_a_table_without_a_note_gets_the_incomplete_footnote_alone():
    """The footnote of a flagged schedule is the note of a table without one (it was written
    after "None")."""
    table = {"id": "t", "title": "T", "headers": ["Schedule"], "rows": [["clr"]], "note": None}
    why = "clr: step_size = 900 but the run has 20 steps; training stops 880 steps early"
    marked = report.mark_incomplete(table, {"clr": why})
    assert marked["rows"] == [["clr †"]]
    assert marked["note"] == f"† The run ends before this schedule's shape does: {why}."


def test_summary_numbers_equal_the_tidy_frames(rendered):
    written, small = rendered
    last = small.epochs.sort_values("epoch").groupby("run_id", observed=True).tail(1)
    means = last.groupby("schedule", observed=True)["test_accuracy"].mean()
    walls = small.runs.groupby("schedule", observed=True)["wall_s"].mean()
    trains = small.runs.groupby("schedule", observed=True)["train_s"].mean()
    csv = pd.read_csv(written["csv"]).set_index("schedule")
    rows = {row[0]: row for row in html_tables(written["html"])["summary"][1:]}
    for schedule, mean in means.items():
        assert csv.loc[schedule, "final_test_accuracy_mean"] == pytest.approx(mean)
        assert csv.loc[schedule, "wall_s_mean"] == pytest.approx(walls[schedule])
        assert rows[schedule][2].startswith(f"{mean * 100:.2f}")
        assert csv.loc[schedule, "train_s_mean"] == pytest.approx(trains[schedule])
        assert rows[schedule][-1] == f"{trains[schedule]:.1f}"
    ordered = csv["final_test_accuracy_mean"].to_numpy()
    assert np.all(np.diff(ordered) <= 0) and list(rows) == list(csv.index)


def test_conclusion_is_on_top_and_agrees_with_the_comparison(rendered):
    written, small = rendered
    comparison = stats.compare(small)
    summary = stats.summarize(small)
    html, markdown = written["html"].read_text(), written["md"].read_text()
    speed = stats.compare_speed(small, summary["target"].iloc[0])
    text = prose.conclusion(summary, comparison, speed, stats.evaluation_interval(small))
    assert text.startswith(str(summary["schedule"].iloc[0]))
    assert f"> {text}" in markdown
    assert html.index('id="conclusion"') < html.index("<table")
    if not comparison["significant"].any():
        assert "better:" not in text and "worse:" not in text


def test_reproduce_command_and_provenance(rendered):
    written, small = rendered
    html = written["html"].read_text()
    assert f"python -m clrbench run --config {small.path}/experiment.toml" in html
    provenance = dict(html_tables(written["html"])["provenance"])
    assert "tensorflow version" in provenance and "cpu" in provenance
    assert "report made with" in provenance


def test_options_are_validated(small, tmp_path):
    with pytest.raises(ClrbenchError) as raised:
        report.render(small, tmp_path / "out", formats=("html", "pdf", "svg"))
    assert str(raised.value) == "--format must be one or more of html,md, got pdf,svg"
    with pytest.raises(ClrbenchError, match="got nothing$"):
        report.render(small, tmp_path / "out", formats=(" ",))
    with pytest.raises(ClrbenchError, match="--target"):
        report.render(small, tmp_path / "out", target=98)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
def test_target_and_baseline_options(small, tmp_path):
    other = small.schedules[-1]
    written = report.render(small, tmp_path, ("md",), target=0.5, baseline_schedule=other)
    assert set(written) == {"md", "csv"}
    csv = pd.read_csv(written["csv"])
    assert (csv["target"] == 0.5).all() and (csv["n_reached"] == csv["ok"]).all()
    assert f"Against the baseline: {other}" in written["md"].read_text()


def edit_run(folder: Path, run_id: str, **changes) -> dict:
    path = folder / "runs" / run_id / "run.json"
    record = json.loads(path.read_text()) | changes
    path.write_text(json.dumps(record))
    return record


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
def test_failed_and_diverged_runs_are_listed(synthetic_small, tmp_path):
    folder = shutil.copytree(
        synthetic_small, tmp_path / "results", ignore=shutil.ignore_patterns("report")
    )
    run_ids = sorted(p.name for p in (folder / "runs").iterdir())
    failed, diverged = run_ids[0], run_ids[-1]
    edit_run(folder, failed, status="failed", error="ValueError: boom\nTraceback (most recent)")
    for name in ("batches", "epochs"):
        (folder / "runs" / failed / f"{name}.parquet").unlink()
    edit_run(folder, diverged, status="diverged", diverged_step=50)
    batches = pd.read_parquet(folder / "runs" / diverged / "batches.parquet").iloc[:51]
    batches.loc[50, "loss"] = np.nan
    batches.to_parquet(folder / "runs" / diverged / "batches.parquet")
    epochs = pd.read_parquet(folder / "runs" / diverged / "epochs.parquet").iloc[:1]
    epochs.to_parquet(folder / "runs" / diverged / "epochs.parquet")

    written = report.render(load_results(folder), folder / "report")
    runs = {row[0]: row for row in html_tables(written["html"])["runs"][1:]}
    assert len(runs) == len(run_ids)
    assert runs[failed][3] == "failed: ValueError: boom"
    assert runs[diverged][3] == "diverged at step 50"
    markdown = written["md"].read_text()
    assert "failed: ValueError: boom" in markdown and "diverged at step 50" in markdown
    assert "2 of 4 runs did not finish ok" in markdown


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
@pytest.mark.parametrize("outcome", ["failed", "diverged"])
def test_a_folder_without_any_ok_run_still_reports(tmp_path, outcome):
    outcomes = {(label, seed): outcome for label in ("constant", "step") for seed in range(2)}
    load_synthetic().write_synthetic_results(
        tmp_path, ("constant", "step"), seeds=2, epochs=2, train_size=1280, outcomes=outcomes
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no seaborn/pandas complaints about empty data either
        written = report.render(load_results(tmp_path), tmp_path / "report")
    markdown = written["md"].read_text()
    assert "No run finished ok" in markdown
    assert markdown.count(f"| {outcome}") == 4 and "constant (no data)" not in markdown


def test_cli_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clrbench: error:") and err.count("\n") == 1
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("damage", ["not json", "{}", '{"status": "ok"}'])
def test_cli_corrupt_run_json_is_one_line_and_exit_2(synthetic_small, tmp_path, capsys, damage):
    folder = shutil.copytree(
        synthetic_small, tmp_path / "results", ignore=shutil.ignore_patterns("report")
    )
    victim = sorted((folder / "runs").iterdir())[0] / "run.json"
    victim.write_text(damage)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clrbench: error:") and err.count("\n") == 1
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


@pytest.mark.slow  # a new interpreter
def test_cli_renders_without_tensorflow(synthetic_small, tmp_path):
    script = (
        "import sys\nfrom clrbench.cli.main import main\n"
        f"code = main(['report', {str(synthetic_small)!r}, '--out', {str(tmp_path)!r}])\n"
        "assert 'tensorflow' not in sys.modules, 'report imported TensorFlow'\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split()
    assert printed == [str(tmp_path / n) for n in ("report.html", "report.md", "summary.csv")]


IMAGE_PROBE = """<script>addEventListener("load", () => document.body.setAttribute(
  "data-images", [...document.images].map(i => i.complete ? i.naturalWidth : -1).join(",")));
</script></body>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_html_renders_in_headless_chromium(rendered, tmp_path):
    from PIL import Image

    written, _ = rendered
    probe = tmp_path / "probe.html"  # a test copy with a script recording image load status
    probe.write_text(written["html"].read_text().replace("</body>", IMAGE_PROBE))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1280,4000"]  # fmt: skip
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [*flags, f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
             probe.as_uri()], capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    widths = re.search(r'data-images="([^"]*)"', dom)
    assert widths, "image probe did not run"
    assert len(widths.group(1).split(",")) >= 5
    assert all(int(w) > 0 for w in widths.group(1).split(",")), widths.group(1)
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([*flags, f"--user-data-dir={profile}", f"--screenshot={shot}",
                        written["html"].as_uri()], capture_output=True, timeout=120)  # fmt: skip
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200
