"""The reference optimizers' own numbers, computed in a process of their own (PyTorch).

Run by tests/test_optimizers_torch.py as ``python tests/optimizer_reference.py CASES.json
PROBLEM.npz OUT.npz``. PROBLEM.npz holds a small classification problem: inputs ``x``, labels
``labels``, a one-hidden-layer ReLU network's initial ``w1, b1, w2, b2`` (kernels laid out as
Keras's, inputs x kernel) and ``batches`` (one row of example indices per step). Each case names
an optimizer class (``schedulefree.<name>`` or ``torch.optim.<name>``) and its arguments; the
network is trained one step per row of ``batches`` (mean cross-entropy of the softmax) and OUT.npz
receives, under ``<case>/y<i>`` and ``<case>/x<i>``, parameter i after every step: the weights
(y) and, for schedule-free optimizers, the state's evaluation point x; ``<case>/loss`` the loss of
every step at y.

This interpreter imports PyTorch, schedulefree and numpy only: TensorFlow and PyTorch must never
share a process, so the test process, which imports TensorFlow, reads the numbers from the file.
"""

from __future__ import annotations

import json
import sys

import numpy as np

PARAMS = ("w1", "b1", "w2", "b2")


def train(case: dict, problem: dict) -> dict[str, np.ndarray]:
    import torch

    if case["module"] == "schedulefree":
        import schedulefree

        cls = getattr(schedulefree, case["optimizer"])
    else:
        cls = getattr(torch.optim, case["optimizer"])
    params = [torch.nn.Parameter(torch.tensor(problem[k])) for k in PARAMS]
    kwargs = dict(case["kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    optimizer = cls(params, **kwargs)
    if hasattr(optimizer, "train"):
        optimizer.train()
    x_all, labels = torch.tensor(problem["x"]), torch.tensor(problem["labels"]).long()
    ys, xs, losses = [[] for _ in params], [[] for _ in params], []
    for batch in problem["batches"]:
        index = torch.tensor(batch).long()
        w1, b1, w2, b2 = params
        hidden = torch.relu(x_all[index] @ w1 + b1)
        loss = torch.nn.functional.cross_entropy(hidden @ w2 + b2, labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        for i, p in enumerate(params):
            ys[i].append(p.detach().numpy().copy())
            state = optimizer.state[p]
            xs[i].append(state["x"].numpy().copy() if "x" in state else ys[i][-1])
    out = {"loss": np.array(losses)}
    for i in range(len(params)):
        out[f"y{i}"], out[f"x{i}"] = np.stack(ys[i]), np.stack(xs[i])
    return out


def main(cases_path: str, problem_path: str, out_path: str) -> None:
    if "tensorflow" in sys.modules:  # cannot happen in this script; kept as the rule's guard
        raise SystemExit("TensorFlow is loaded: PyTorch must run in a process of its own")
    with open(cases_path, encoding="utf-8") as file:
        cases = json.load(file)
    problem = dict(np.load(problem_path))
    computed = {}
    for key, case in cases.items():
        for name, array in train(case, problem).items():
            computed[f"{key}/{name}"] = array
    from importlib.metadata import version

    versions = {"__torch__": version("torch"), "__schedulefree__": version("schedulefree")}
    np.savez(out_path, **{k: np.array(v) for k, v in versions.items()}, **computed)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
