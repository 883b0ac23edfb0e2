"""The optimizers a run may name, as plain data: the Keras class and its fixed arguments."""

from __future__ import annotations

from typing import Any

from clrbench.errors import ConfigError

MOMENTUM = 0.9

# name -> (Keras class name, extra constructor arguments)
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd-momentum": ("SGD", {"momentum": MOMENTUM}),
    "sgd": ("SGD", {}),
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
}

# The optimizers a stack (clrbench.train.stack_optim) writes out, update rule for update rule
STACKABLE_OPTIMIZERS = ("sgd-momentum", "sgd", "rmsprop", "adam")


def check_optimizer(name: str) -> str:
    """Return `name` if it is a known optimizer, else raise ConfigError."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return name
