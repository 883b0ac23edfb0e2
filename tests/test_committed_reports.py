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


def same_numbers(left: object, right: object) -> bool:
    """Equal JSON, floats to 1e-12 relative: a bootstrap mean's last bit may differ between
    CPUs (numpy's pairwise sums follow the SIMD width), nothing a report prints."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_numbers(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_numbers, left, right))
    if isinstance(left, float) and isinstance(right, float):
        return left == pytest.approx(right, rel=1e-12, abs=1e-15)
    return left == right


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
            rendered, committed = (json.loads((f / name).read_text()) for f in (copy, folder))
            assert same_numbers(rendered, committed), name
    assert not [w for w in recwarn if "not part of its current experiment" in str(w.message)]
