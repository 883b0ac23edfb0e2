"""The one atomic-write helper: a reader sees the old or the new content, never a mixture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clrbench.store import atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic.write_text(tmp_path / "report.md", "old\n")
    with pytest.raises(RuntimeError), atomic.atomic_file(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk gone")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_temporary_names_are_hidden_unique_and_keep_the_suffix(tmp_path):
    names = {atomic.temporary_name(tmp_path / "lr_find.png") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.parent == tmp_path and name.suffix == ".png"  # matplotlib picks the format
        assert atomic.is_temporary(name)
    assert not atomic.is_temporary(tmp_path / "lr_find.png")


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    final = tmp_path / "run"
    with atomic.atomic_folder(final) as tmp:
        (tmp / "run.json").write_text("1")
    with pytest.raises(RuntimeError), atomic.atomic_folder(final) as tmp:
        (tmp / "run.json").write_text("2")
        raise RuntimeError
    assert (final / "run.json").read_text() == "1"
    with atomic.atomic_folder(final) as tmp:
        (tmp / "batches.parquet").write_text("b")
        (tmp / "run.json").write_text("3")
    assert sorted(p.name for p in final.iterdir()) == ["batches.parquet", "run.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.slow
def test_a_file_size_limit_leaves_the_old_file_intact(tmp_path):
    """A real RLIMIT_FSIZE in a child process: the write fails (EFBIG), nothing is half-done."""
    path = tmp_path / "summary.csv"
    path.write_text("old\n")
    script = (
        "import resource, sys\n"
        "from clrbench.store import atomic\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        f"atomic.write_text({str(path)!r}, 'x' * 5000)\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "File too large" in done.stderr
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
