"""Independent check: make() reproduces PyTorch's schedulers by actually stepping them.

Needs torch (``pip install torch``); skipped without it.
"""

import numpy as np
import pytest

from clrbench.schedules import make

torch = pytest.importorskip("torch")
lr_scheduler = torch.optim.lr_scheduler

N_STEPS = 4000


def _optimizer(lr: float):
    parameter = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([parameter], lr=lr, momentum=0.9), parameter


def _torch_rates(build, lr: float, n: int) -> np.ndarray:
    """The rate PyTorch applies at optimizer steps 0..n-1 (scheduler stepped after each)."""
    optimizer, parameter = _optimizer(lr)
    scheduler = build(optimizer)
    rates = []
    for _ in range(n):
        (rate,) = scheduler.get_last_lr()
        assert optimizer.param_groups[0]["lr"] == rate
        rates.append(rate)
        parameter.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    return np.array(rates)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr(mode):
    base_lr, max_lr, step_size, gamma = 1e-3, 6e-3, 350, 0.9995
    rates = _torch_rates(
        lambda opt: lr_scheduler.CyclicLR(
            opt, base_lr, max_lr, step_size_up=step_size, mode=mode, gamma=gamma
        ),
        lr=base_lr,
        n=N_STEPS,
    )
    extra = {"gamma": gamma} if mode == "exp_range" else {}
    ours = make(mode, base_lr=base_lr, max_lr=max_lr, step_size=step_size, **extra)
    np.testing.assert_allclose(ours(np.arange(N_STEPS)), rates, rtol=1e-5, atol=0)


ONE_CYCLE = [
    dict(max_lr=0.1, total_steps=N_STEPS, anneal="cos"),
    dict(max_lr=0.1, total_steps=N_STEPS, anneal="linear"),
    dict(max_lr=0.05, total_steps=3001, pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
]


@pytest.mark.parametrize("params", ONE_CYCLE, ids=["cos", "linear", "custom"])
def test_one_cycle_lr(params):
    p = {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4, "anneal": "cos", **params}
    rates = _torch_rates(
        lambda opt: lr_scheduler.OneCycleLR(
            opt,
            max_lr=p["max_lr"],
            total_steps=p["total_steps"],
            pct_start=p["pct_start"],
            anneal_strategy=p["anneal"],
            div_factor=p["div_factor"],
            final_div_factor=p["final_div_factor"],
        ),
        lr=p["max_lr"],
        n=p["total_steps"],
    )
    ours = make("one_cycle", **params)(np.arange(p["total_steps"]))
    np.testing.assert_allclose(ours, rates, rtol=1e-5, atol=0)


@pytest.mark.parametrize(("first_period", "t_mult"), [(300, 1), (50, 2), (7, 3)])
def test_cosine_annealing_warm_restarts(first_period, t_mult):
    max_lr, min_lr = 0.1, 1e-4
    rates = _torch_rates(
        lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=first_period, T_mult=t_mult, eta_min=min_lr
        ),
        lr=max_lr,
        n=N_STEPS,
    )
    ours = make("sgdr", max_lr=max_lr, min_lr=min_lr, first_period=first_period, t_mult=t_mult)
    np.testing.assert_allclose(ours(np.arange(N_STEPS)), rates, rtol=1e-5, atol=0)
