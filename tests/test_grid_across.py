"""The grid's families across workloads: Kendall's W checked against scipy's Friedman test
(W = chi² / (m (n − 1)) on untied data), its edges, and the performance profile of the test
error, on scores set here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clrbench.across.grid import across_grid, family_scores

FAMILIES = ["constant", "cosine", "adamw-constant", "adamw-cosine", "sf-sgd"]


def scores(table: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"workload": w, "family": f, "mean": v, "runs": 5}
        for w, values in table.items()
        for f, v in zip(FAMILIES, values, strict=True)
    ]
    return pd.DataFrame(rows)


UNTIED = {
    "mnist-mlp": [0.980, 0.983, 0.981, 0.984, 0.979],
    "fashion-mnist-mlp": [0.890, 0.895, 0.893, 0.892, 0.885],
    "mnist1d-mlp": [0.640, 0.660, 0.650, 0.670, 0.600],
}


def test_kendalls_w_equals_friedmans_chi2_over_m_n_minus_1():
    found = across_grid(scores(UNTIED)).agreement
    assert found.status == "tested"
    # scipy: the families are the treatments, the workloads the blocks
    columns = np.array(list(UNTIED.values())).T
    chi2, p = stats.friedmanchisquare(*columns)
    m, n = len(UNTIED), len(FAMILIES)
    assert found.w == pytest.approx(chi2 / (m * (n - 1)), rel=1e-12)
    assert found.chi2 == pytest.approx(chi2, rel=1e-12) and found.p_value == pytest.approx(p)


def test_identical_rankings_give_w_one_and_one_workload_cannot_test():
    same = {w: UNTIED["mnist-mlp"] for w in ("a", "b", "c")}
    assert across_grid(scores(same)).agreement.w == pytest.approx(1.0)
    alone = across_grid(scores({"mnist-mlp": UNTIED["mnist-mlp"]})).agreement
    assert alone.w is None and alone.status.startswith("cannot test")


def test_ties_everywhere_are_undefined_and_partial_ties_are_corrected():
    flat = {w: [0.9] * 5 for w in ("a", "b")}
    assert across_grid(scores(flat)).agreement.status.startswith("undefined")
    tied = {"a": [0.9, 0.9, 0.8, 0.7, 0.6], "b": [0.6, 0.7, 0.8, 0.9, 0.95]}
    # scipy's friedmanchisquare applies the same tie correction
    chi2, _ = stats.friedmanchisquare(*np.array(list(tied.values())).T)
    assert across_grid(scores(tied)).agreement.w == pytest.approx(chi2 / (2 * 4), rel=1e-12)


def test_profile_ratio_is_error_over_the_best_familys_error():
    found = across_grid(scores(UNTIED)).profile.ratios
    mnist = found[found["workload"] == "mnist-mlp"].set_index("schedule")["ratio"]
    assert mnist["adamw-cosine"] == 1.0  # the best there
    assert mnist["sf-sgd"] == pytest.approx((1 - 0.979) / (1 - 0.984))
    left_out = scores(UNTIED)
    left_out = left_out[
        ~((left_out["workload"] == "mnist1d-mlp") & (left_out["family"] == "sf-sgd"))
    ]
    grid = across_grid(left_out)
    assert "sf-sgd" not in grid.profiled and "sf-sgd" in grid.agreement.left_out


def test_family_scores_count_diverged_as_chance_and_leave_failed_out():
    status = ["ok", "diverged", "failed", "ok"]
    final = pd.DataFrame({"schedule": ["a", "a", "a", "b"], "status": status,
                          "final_test_accuracy": [0.9, np.nan, np.nan, 0.8]})  # fmt: skip
    found = family_scores({"w": [final, final]}).set_index("family")
    assert found.loc["a", "mean"] == pytest.approx((0.9 + 0.1) / 2) and found.loc["a", "runs"] == 4


def test_the_grid_across_files_carry_w_and_the_profile(tmp_path):
    import json

    from clrbench.across.grid import write_grid_across

    grid = across_grid(scores(UNTIED))
    paths = write_grid_across(grid, tmp_path / "across")
    document = json.loads(paths["json"].read_text())
    assert document["kendalls_w"]["w"] == pytest.approx(grid.agreement.w)
    assert document["kendalls_w"]["status"] == "tested"
    assert {r["family"] for r in document["profile"]} == set(FAMILIES)
    markdown = paths["md"].read_text()
    assert f"W = {grid.agreement.w:.3f}" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[0] == "| Family | Profile score | " + " | ".join(
        f"Rank: {w}" for w in sorted(UNTIED)) + " |"  # fmt: skip
    assert len(table) == 1 + len(FAMILIES)
    alone = write_grid_across(across_grid(scores({"a": UNTIED["mnist-mlp"]})), tmp_path / "one")
    assert "Kendall's W over the families: cannot test" in alone["md"].read_text()
