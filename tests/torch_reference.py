"""PyTorch's own learning rates for the schedule cross-check, computed in a process of their own.

Run by tests/test_schedules_torch.py as ``python tests/torch_reference.py CASES.json OUT.npz``:
each case names a PyTorch scheduler, its arguments and a step count; the rates PyTorch applies at
optimizer steps 0..n-1 (the scheduler stepped after each optimizer step) are written to OUT.npz
under the case's key.

This interpreter imports PyTorch and numpy only. TensorFlow and PyTorch must never share a
process (newer torch builds segfault once TensorFlow is loaded), so the test process, which
imports TensorFlow elsewhere, never imports torch: it reads the rates from the file.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def rates(scheduler_name: str, kwargs: dict, lr: float, steps: int) -> np.ndarray:
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr, momentum=0.9)
    scheduler = getattr(torch.optim.lr_scheduler, scheduler_name)(optimizer, **kwargs)
    applied = []
    for _ in range(steps):
        (rate,) = scheduler.get_last_lr()
        if optimizer.param_groups[0]["lr"] != rate:
            raise SystemExit(f"{scheduler_name}: get_last_lr() differs from the optimizer's rate")
        applied.append(rate)
        parameter.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    return np.array(applied)


def main(cases_path: str, out_path: str) -> None:
    if "tensorflow" in sys.modules:  # cannot happen in this script; kept as the rule's guard
        raise SystemExit("TensorFlow is loaded: PyTorch must run in a process of its own")
    with open(cases_path, encoding="utf-8") as file:
        cases = json.load(file)
    computed = {
        key: rates(case["scheduler"], case["kwargs"], case["lr"], case["steps"])
        for key, case in cases.items()
    }
    import torch

    np.savez(out_path, __torch_version__=np.array(torch.__version__), **computed)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
