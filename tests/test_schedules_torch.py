"""Independent check: make() reproduces PyTorch's schedulers by actually stepping them.

PyTorch runs in its own interpreter (tests/torch_reference.py): this process imports
TensorFlow, and newer torch builds segfault when both share a process. The rates come back
through a file. Skipped, with the reason, when torch is not installed (`pip install torch`).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clrbench.schedules import make

pytestmark = pytest.mark.slow  # starts a process

try:  # is torch installed? (asked of its metadata: this process must not import it)
    importlib.metadata.distribution("torch")
except importlib.metadata.PackageNotFoundError:
    pytest.skip(
        "torch not installed: the PyTorch cross-check of the schedules needs `pip install torch`",
        allow_module_level=True,
    )

REFERENCE = Path(__file__).with_name("torch_reference.py")
N_STEPS = 4000

CYCLIC = {"base_lr": 1e-3, "max_lr": 6e-3, "step_size": 350, "gamma": 0.9995}
ONE_CYCLE = {
    "cos": dict(max_lr=0.1, total_steps=N_STEPS, anneal="cos"),
    "linear": dict(max_lr=0.1, total_steps=N_STEPS, anneal="linear"),
    "custom": dict(
        max_lr=0.05, total_steps=3001, pct_start=0.25, div_factor=10.0, final_div_factor=100.0
    ),
}
SGDR = {"300-1": (300, 1), "50-2": (50, 2), "7-3": (7, 3)}
SGDR_RATES = {"max_lr": 0.1, "min_lr": 1e-4}


def _one_cycle_defaults(params: dict) -> dict:
    return {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4, **params}


def _cases() -> dict[str, dict]:
    """Each PyTorch scheduler configuration, keyed as the tests below read them."""
    c = CYCLIC
    cases = {
        f"cyclic-{mode}": {
            "scheduler": "CyclicLR",
            "kwargs": dict(
                base_lr=c["base_lr"],
                max_lr=c["max_lr"],
                step_size_up=c["step_size"],
                mode=mode,
                gamma=c["gamma"],
            ),
            "lr": c["base_lr"],
            "steps": N_STEPS,
        }
        for mode in ("triangular", "triangular2", "exp_range")
    }
    for key, params in ONE_CYCLE.items():
        p = _one_cycle_defaults(params)
        cases[f"one-cycle-{key}"] = {
            "scheduler": "OneCycleLR",
            "kwargs": dict(
                max_lr=p["max_lr"],
                total_steps=p["total_steps"],
                pct_start=p["pct_start"],
                anneal_strategy=p.get("anneal", "cos"),
                div_factor=p["div_factor"],
                final_div_factor=p["final_div_factor"],
            ),
            "lr": p["max_lr"],
            "steps": p["total_steps"],
        }
    for key, (first_period, t_mult) in SGDR.items():
        cases[f"sgdr-{key}"] = {
            "scheduler": "CosineAnnealingWarmRestarts",
            "kwargs": dict(T_0=first_period, T_mult=t_mult, eta_min=SGDR_RATES["min_lr"]),
            "lr": SGDR_RATES["max_lr"],
            "steps": N_STEPS,
        }
    return cases


@pytest.fixture(scope="module")
def torch_rates(tmp_path_factory) -> dict[str, np.ndarray]:
    """PyTorch's applied rates for every case, computed by a separate interpreter."""
    folder = tmp_path_factory.mktemp("torch")
    cases, out = folder / "cases.json", folder / "rates.npz"
    cases.write_text(json.dumps(_cases()), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(REFERENCE), str(cases), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"{REFERENCE.name} exited {done.returncode}:\n{done.stderr[-3000:]}")
    with np.load(out) as archive:
        return {key: archive[key] for key in archive.files}


def test_the_reference_ran_in_its_own_process(torch_rates):
    assert "torch" not in sys.modules  # this process never imported it
    assert set(torch_rates) == set(_cases()) | {"__torch_version__"}
    assert all(len(torch_rates[k]) == case["steps"] for k, case in _cases().items())


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr(torch_rates, mode):
    c = CYCLIC
    extra = {"gamma": c["gamma"]} if mode == "exp_range" else {}
    ours = make(mode, base_lr=c["base_lr"], max_lr=c["max_lr"], step_size=c["step_size"], **extra)
    np.testing.assert_allclose(
        ours(np.arange(N_STEPS)), torch_rates[f"cyclic-{mode}"], rtol=1e-5, atol=0
    )


@pytest.mark.parametrize("key", list(ONE_CYCLE))
def test_one_cycle_lr(torch_rates, key):
    params = ONE_CYCLE[key]
    ours = make("one_cycle", **params)(np.arange(params["total_steps"]))
    np.testing.assert_allclose(ours, torch_rates[f"one-cycle-{key}"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("key", list(SGDR))
def test_cosine_annealing_warm_restarts(torch_rates, key):
    first_period, t_mult = SGDR[key]
    ours = make("sgdr", first_period=first_period, t_mult=t_mult, **SGDR_RATES)
    np.testing.assert_allclose(
        ours(np.arange(N_STEPS)), torch_rates[f"sgdr-{key}"], rtol=1e-5, atol=0
    )


def test_this_process_refuses_to_import_torch():
    with pytest.raises(ImportError, match="subprocess"):
        import torch  # noqa: F401
