"""Compact data (``clrbench.store.compact``): a run report re-renders from what is written
beside it, without the results folder, to the same tables and text (fast tier: synthetic
runs written through the real store, no training)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import load_synthetic
from report_data import Tables

import clrbench
from clrbench.errors import ResultsError


@pytest.fixture
def rendered(tmp_path):
    """A results folder with a diverged run, its report, and the folder's size on disk."""
    results = load_synthetic().write_synthetic_results(
        tmp_path / "results", ("constant", "clr-iter", "step"), seeds=3, epochs=3,
        train_size=1280, outcomes={("step", 1): "diverged"},
    )  # fmt: skip
    written = clrbench.report(results, out=tmp_path / "reference")
    return results, written


def _tables(path) -> dict:
    parser = Tables()
    parser.feed(path.read_text())
    tables = parser.tables
    tables["provenance"] = [r for r in tables["provenance"] if r[0] != "report generated"]
    return tables


def _text(path) -> str:
    """A page without the line that says when it was generated."""
    return "".join(
        line for line in path.read_text().splitlines(True) if "| report generated |" not in line
    )


def test_a_report_re_renders_from_its_compact_data_without_the_results(rendered, tmp_path):
    results, written = rendered
    folder = written["md"].parent
    before = {kind: _text(written[kind]) for kind in ("md", "csv")}
    tables = _tables(written["html"])
    data = folder / "data"
    # evaluated at the epochs' ends only: the evaluations are the epochs', not written twice
    assert {p.name for p in data.iterdir()} == {
        "compact.json", "runs.parquet", "epochs.parquet", "experiment.toml",
    }  # fmt: skip
    original = clrbench.load_results(results)
    size = sum(p.stat().st_size for p in data.iterdir())
    batches = sum(p.stat().st_size for p in results.rglob("batches.parquet"))
    assert size < batches  # no per-batch logs
    shutil.rmtree(results)

    loaded = clrbench.load_results(folder)  # the report folder: its compact data
    assert loaded.batches.empty and len(loaded.runs) == 9
    for name in ("runs", "epochs", "evaluations"):  # the same frames, dtypes included
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(original, name))
    assert sorted(loaded.runs["status"].unique()) == ["diverged", "ok"]
    again = clrbench.report(folder)  # re-rendered in place
    assert again["md"] == written["md"]
    assert {kind: _text(again[kind]) for kind in ("md", "csv")} == before
    assert _tables(again["html"]) == tables
    # the per-batch figures kept as they were rendered
    assert "figures/learning-rate.png" in before["md"] and "figures/training.png" in before["md"]


def test_compare_and_the_api_read_compact_data_as_results(rendered):
    results, written = rendered
    expected = clrbench.compare(results)
    shutil.rmtree(results)
    pd.testing.assert_frame_equal(clrbench.compare(written["md"].parent), expected)


def test_compact_data_of_another_format_is_one_clear_error(rendered):
    _, written = rendered
    meta = written["md"].parent / "data" / "compact.json"
    meta.write_text(meta.read_text().replace("clrbench-compact/1", "clrbench-compact/9"))
    with pytest.raises(ResultsError, match="not compact data of format clrbench-compact/1"):
        clrbench.load_results(written["md"].parent)
