"""Named studies, in the study TOML shape: the workload, the protocol and the families' spaces.

Why these spaces (SGD momentum 0.9, MNIST; the constant-rate sweep in ``clrbench.config.presets``:
test accuracy peaks near 0.1, turns ragged from 0.3, diverges at 1-2): rates span 0.003-1 for a
constant rate and 0.03-1 for the peak of a cycle or a decay, i.e. from clearly too low to past
divergence, so a tuner can find the edge; cyclic lower bounds are 3-50% of the peak (Smith: 1/3 to
1/10); half cycles last 1-5 epochs (bckenstler: step_size 2-8x an epoch; Smith 2-10x); step decay
drops by 0.1-0.8 every 1 to epochs/3 epochs; sine-exp's amplitude falls to 1-100% of its start by
the end. Lengths are in epochs, so a space fits any epoch count and training-set size."""

from __future__ import annotations

from typing import Any

from clrbench.config.workloads import (
    BUILT_IN,
    DEFAULT_WORKLOAD,
    NamedWorkload,
    study_validation_size,
)

MNIST = BUILT_IN[DEFAULT_WORKLOAD]

STANDARD = ("constant", "step-decay", "clr-iter", "clr-epoch", "sine-exp")
OPTIONAL = ("one-cycle", "sgdr", "cosine", "linear-decay", "wsd", "cyclic-cosine")


def _half_cycle(epochs: int) -> tuple[float, float]:
    """Range of a half cycle, in epochs: 1-5, shrunk for short runs to at most half the run."""
    high = min(5.0, epochs / 2)
    return min(1.0, high / 2), high


def all_families(epochs: int) -> list[dict[str, Any]]:
    """Every family clrbench knows a default space for, sized to ``epochs``."""
    low, high = _half_cycle(epochs)
    peak = {"log": [0.03, 1.0]}
    base = {"log": [0.03, 0.5], "times": "max_lr"}
    half = {"uniform": [low, high], "unit": "epochs"}
    spaces = {
        "constant": ("constant", "iteration", {"lr": {"log": [0.003, 1.0]}}),
        "step-decay": (
            "step_decay",
            "epoch",
            {
                "initial_lr": {"log": [0.01, 1.0]},
                "drop": {"uniform": [0.1, 0.8]},
                "every_steps": {"int": [1, max(1, epochs // 3)], "unit": "epochs"},
            },
        ),
        "clr-iter": (
            "triangular",
            "iteration",
            {"max_lr": peak, "base_lr": base, "step_size": half},
        ),
        "clr-epoch": (
            "triangular",
            "epoch",
            {
                "max_lr": peak,
                "base_lr": base,
                "step_size": {"int": [1, max(1, int(high))], "unit": "epochs"},
            },
        ),
        "sine-exp": (
            "sine_exp",
            "iteration",
            {
                "max_lr": peak,
                "base_lr": base,
                "period": {"uniform": [2 * low, 2 * high], "unit": "epochs"},
                "decay": {"log": [0.01, 1.0], "unit": "fraction_at_end"},
            },
        ),
        "one-cycle": (
            "one_cycle",
            "iteration",
            {
                "max_lr": {"log": [0.03, 3.0]},
                "pct_start": {"uniform": [0.1, 0.5]},
                "div_factor": {"log": [5.0, 100.0]},
                "total_steps": {"value": epochs, "unit": "epochs"},
            },
        ),
        "sgdr": (
            "sgdr",
            "iteration",
            {
                "max_lr": peak,
                "min_lr": {"log": [0.001, 0.1], "times": "max_lr"},
                "first_period": {"uniform": [2 * low, 2 * high], "unit": "epochs"},
            },
        ),
    }
    spaces |= modern_spaces(epochs)
    return [
        {"label": label, "name": name, "granularity": granularity, "space": space}
        for label, (name, granularity, space) in spaces.items()
    ]


def modern_spaces(epochs: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """The schedules of now (issue 33), their spaces from their parameters' roles: the peak
    (role ``rate``) log-uniform over the decays' 0.03-1; the warm-up (role ``warmup``) 1-10% of
    the run (AlgoPerf's cyclic entry tunes 2-10%); WSD's cooldown (role ``cooldown``) 10-50% of
    the run (Hägele et al. 2024: 20% matches cosine); the shape's length (role ``length``) the
    whole run; the end rate 0 (linear decay to zero, Defazio et al. 2023); AlgoPerf's 1 or 2
    cycles; WSD's 1-sqrt cooldown (Hägele et al.'s best)."""
    del epochs  # every length is a share of the run
    whole = {"value": 1, "unit": "run"}
    warm = {
        "peak_lr": {"log": [0.03, 1.0]},
        "warmup_steps": {"uniform": [0.01, 0.1], "unit": "run"},
        "total_steps": whole,
        "end_lr": 0.0,
    }
    cooldown = {"decay_steps": {"uniform": [0.1, 0.5], "unit": "run"}, "cooldown": "1-sqrt"}
    cycles = {"warmup_steps": {"uniform": [0.02, 0.1], "unit": "run"}, "cycles": {"int": [1, 2]}}
    return {
        "cosine": ("warmup_cosine", "iteration", warm),
        "linear-decay": ("warmup_linear", "iteration", warm),
        "wsd": ("wsd", "iteration", warm | cooldown),
        "cyclic-cosine": ("warmup_cosine_cycles", "iteration", warm | cycles),
    }


def study_preset(
    name: str,
    epochs: int,
    train_size: int | None,
    study: dict[str, Any],
    families: tuple[str, ...] = STANDARD,
    workload: NamedWorkload = MNIST,
) -> dict[str, Any]:
    """A study in the TOML shape."""
    experiment: dict[str, Any] = {"name": name, "dataset": workload.dataset, "epochs": epochs}
    if workload.model != MNIST.model:
        experiment["model"] = workload.model
    experiment |= {"batch_size": workload.batch_size, "optimizer": "sgd-momentum"}
    if train_size is not None:
        experiment["train_size"] = train_size
    chosen = [f for f in all_families(epochs) if f["label"] in families]
    return {"experiment": experiment, "study": dict(study), "family": chosen}


# The reference study: full MNIST (50,000 train / 10,000 validation), 25 epochs. Runs: 5 families
# x 16 trials + 5 x 3 candidates x 3 confirmation seeds + 5 x 7 multipliers x 2 seeds + 7
# schedules x 5 seeds = 230 runs of 25 epochs (and up to 3 re-check runs per family), about 80
# minutes on 2 cores (~40 s per run with 2 at a time), plus three 500-step lr-find sweeps.
REFERENCE = {"budget": 16, "seeds": 5, "sensitivity_seeds": 2, "lr_find_seeds": 3}
REFERENCE |= {"confirm_top": 3, "confirm_seeds": 3}
# The whole protocol in a few minutes: 3,000 images, 3 epochs, 4 trials per family, the best 2
# of them confirmed on 2 seeds.
QUICK = {"budget": 4, "seeds": 3, "sensitivity_seeds": 2, "lr_find_seeds": 2, "lr_find_steps": 200}
QUICK |= {"confirm_top": 2, "confirm_seeds": 2}

STUDY_PRESETS: dict[str, dict[str, Any]] = {
    "reference": {"epochs": 25, "train_size": None, "study": REFERENCE},
    "quick": {"epochs": 3, "train_size": 3000, "study": QUICK},
}
STUDY_PRESET_HELP = {
    "reference": "full MNIST, 25 epochs, budget 16, 5 seeds: about an hour on 2 cores",
    "quick": "3,000 images, 3 epochs, budget 4, 3 seeds: the whole protocol in a few minutes",
}


def preset(
    name: str,
    epochs: int | None = None,
    workload: NamedWorkload = MNIST,
    train_count: int = 60_000,
) -> dict[str, Any]:
    """A named study (its spaces re-sized when ``epochs`` overrides the preset's), on MNIST or
    on ``workload`` (``train_count`` training examples): its epochs (quick: 3/25 of them, at
    least 2), its batch size, a validation split of a sixth of a set smaller than MNIST's, and
    quick's 3,000-example subset where the set is larger."""
    spec = STUDY_PRESETS[name]
    if workload.name == DEFAULT_WORKLOAD:
        return study_preset(name, epochs or spec["epochs"], spec["train_size"], spec["study"])
    validation = study_validation_size(workload, train_count)
    length = workload.epochs if name == "reference" else max(2, round(workload.epochs * 3 / 25))
    subset = spec["train_size"]
    if subset is not None and subset >= train_count - validation:
        subset = None
    protocol = spec["study"] | {"validation_size": validation}
    return study_preset(name, epochs or length, subset, protocol, workload=workload)
