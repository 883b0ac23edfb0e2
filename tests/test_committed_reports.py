"""Every committed report that carries its compact data (``reports/*/data/``) re-renders from it
alone, as on a fresh clone with no results folder: ``report <folder>`` writes the same
``summary.json`` / ``across.json`` and the same Markdown (but the lines that say when, with what
and where to it was rendered)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import clrbench

REPO = Path(__file__).resolve().parents[1]
STAMPS = ("| report generated |", "| report made with |", "python -m clrbench report ")


def carries_compact_data(folder: Path) -> bool:
    data = folder / "data"
    return (
        (data / "study.json").is_file()
        or (data / "compact.json").is_file()
        or any((sub / "data/compact.json").is_file() for sub in data.glob("*"))
    )


COMMITTED = sorted(p for p in (REPO / "reports").iterdir() if carries_compact_data(p))


def stable(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if not line.startswith(STAMPS)]


def test_the_grid_reference_is_among_them():
    assert REPO / "reports/grid-mnist1d-mlp" in COMMITTED


@pytest.mark.slow
@pytest.mark.parametrize("folder", COMMITTED, ids=[p.name for p in COMMITTED])
def test_a_committed_report_re_renders_from_its_compact_data(folder, tmp_path, recwarn):
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    written = clrbench.report(copy)
    assert written["md"] == copy / "report.md", "re-rendered in place"
    assert stable(written["md"].read_text()) == stable((folder / "report.md").read_text())
    for name in ("summary.json", "across.json"):
        if (folder / name).is_file():
            assert json.loads((copy / name).read_text()) == json.loads((folder / name).read_text())
    assert not [w for w in recwarn if "not part of its current experiment" in str(w.message)]
