"""Rendering the report of the full suite (25 runs × 11,725 steps): ≤ 20 s and < 1 GB.

Run with ``.venv/bin/pytest benchmarks/ -q``. ``peak_rss_mb`` of the in-process benchmark is
the pytest process's high-water mark (an upper bound); ``cli_peak_rss_mb`` is the peak of a
fresh ``python -m clrbench report`` process, imports included.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

from clrbench.reporting.render import render
from clrbench.store.results import load_results

SECONDS_LIMIT = 20.0
MEMORY_LIMIT_MB = 1024


def test_bench_render_report(benchmark, suite_dir, tmp_path):
    def load_and_render():
        return render(load_results(suite_dir), tmp_path / "report")

    written = benchmark.pedantic(load_and_render, rounds=2, iterations=1, warmup_rounds=0)
    assert set(written) == {"html", "md", "csv"}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    benchmark.extra_info["peak_rss_mb"] = round(peak)
    benchmark.extra_info["html_kb"] = round(written["html"].stat().st_size / 1024)
    assert benchmark.stats.stats.max < SECONDS_LIMIT
    assert peak < MEMORY_LIMIT_MB


def test_bench_report_command(benchmark, suite_dir, tmp_path):
    """End to end as a user runs it: a fresh interpreter, imports, load, render."""
    command = [sys.executable, "-m", "clrbench", "report", str(suite_dir)]
    command += ["--out", str(tmp_path / "report")]

    def run_command():
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return time.perf_counter() - started

    benchmark.pedantic(run_command, rounds=1, iterations=1)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    benchmark.extra_info["cli_peak_rss_mb"] = round(peak)
    assert benchmark.stats.stats.max < SECONDS_LIMIT
    assert peak < MEMORY_LIMIT_MB
