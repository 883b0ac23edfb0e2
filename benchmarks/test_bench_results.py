"""How long loading the full suite's results folder takes (load_results)."""

from __future__ import annotations

import resource

from clrbench.store.results import load_results


def test_bench_load_results(benchmark, suite_dir):
    results = benchmark.pedantic(load_results, args=(suite_dir,), rounds=3, iterations=1)
    assert len(results.runs) == 25 and len(results.batches) == 25 * 25 * 469
    benchmark.extra_info["batch_rows"] = len(results.batches)
    benchmark.extra_info["batches_mb"] = round(
        results.batches.memory_usage(deep=True).sum() / 2**20, 1
    )
    benchmark.extra_info["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    assert benchmark.stats.stats.max < 5.0
