"""The stated margin (clrbench.analysis.margin): each built-in workload's, --margin over it."""

from __future__ import annotations

import pytest

from clrbench.analysis.margin import checked_margin_pp, workload_margin
from clrbench.config.workload import Workload
from clrbench.config.workloads import BUILT_IN, named
from clrbench.errors import ConfigError


def test_every_built_in_workload_states_its_margin():
    expected = {"mnist-mlp": 0.1, "fashion-mnist-mlp": 0.25, "mnist1d-mlp": 1.0}
    assert {name: w.margin_pp for name, w in BUILT_IN.items()} == expected
    margin = workload_margin(named("fashion-mnist-mlp").workload(epochs=3))
    assert margin.value == pytest.approx(0.0025) and margin.text == "±0.25 pp"
    assert margin.source == "fashion-mnist-mlp's preset"


def test_margin_option_replaces_the_preset():
    margin = workload_margin(named("mnist-mlp").workload(), 0.3)
    assert margin.value == pytest.approx(0.003) and margin.source == "set by --margin"
    assert margin.to_json() == {"margin_pp": 0.3, "margin_source": "set by --margin"}


def test_a_workload_without_a_margin_has_none():
    unnamed = Workload(dataset="mnist", model="mlp-100-100")
    margin = workload_margin(unnamed)
    assert margin.value is None and margin.text == "no margin"
    assert workload_margin(None).source == "none stated (give --margin)"


@pytest.mark.parametrize("bad", [0.0, -0.1, 100.0, float("nan"), float("inf")])
def test_a_bad_margin_is_one_clear_line(bad):
    with pytest.raises(ConfigError, match=r"^--margin .*: give percentage points above 0"):
        checked_margin_pp(bad)
