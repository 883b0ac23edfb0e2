"""The workload: what stays fixed while schedules are compared (AlgoPerf's lesson), checked once.

A :class:`Workload` is the data set and its split, the model (a name: its builder, preprocessing,
loss and metric), the batch size, the epochs, the optimizer, the thread budget and the trainer.
``Experiment``, the lr-find sweep (``SweepSettings``) and the study (``StudyConfig``) each hold
one; every run of them trains it. It validates itself when it is made, so an invalid workload
never exists.

The model is named, not built here (this layer never imports TensorFlow): :data:`MODELS` maps
each name to the importable module that builds it, resolved in the training process by
``clrbench.train.models.resolve``. A workload of one's own is one more entry (a module with
the same five callables: see ``clrbench.train.workload``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from clrbench.config.optimizers import CLASSIC, check_optimizer, check_weight_decay, spec
from clrbench.data.load import dataset_classes, dataset_counts
from clrbench.data.plugin import is_plugin
from clrbench.data.registry import DATASETS
from clrbench.errors import ConfigError

# Model builders by name -> the module that builds the model and says how its data is
# preprocessed, and its loss and metric (clrbench.train.workload documents the five callables).
MODELS = {"dense-512": "clrbench.train.workload", "mlp-100-100": "clrbench.train.mlp"}
DEFAULT_MODEL = "dense-512"
# the lean loop, or Keras fit (lr_mode "callback", the blog's per-batch rate callback, needs fit),
# or the loop's runs of a seed stacked in one graph (``clrbench.train.stacked``: what ``--stack``
# sets; another float order, so other run ids)
STACKED = "stacked"
TRAINERS = ("loop", "fit", STACKED)
EVALUATE_ON = ("test", "validation")


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``examples`` (the last batch may be partial)."""
    return math.ceil(examples / batch_size)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Workload:
    """The fixed part of every run, validated on construction (one ConfigError line)."""

    dataset: str = "mnist"  # a registered data set (clrbench.data.registry)
    model: str = DEFAULT_MODEL  # a model by name (MODELS), or a plug-in workload's
    epochs: int = 25  # epochs per run
    batch_size: int = 128  # examples per optimizer step (the last batch may be partial)
    train_size: int | None = None  # a stratified subset of the training images
    # Examples of the training set held out, stratified, for validation (None: train on all
    # of it); evaluate_on says which set the per-epoch evaluation uses.
    validation_size: int | None = None
    split_seed: int = 0  # seed of the stratified validation split
    evaluate_on: str = "test"  # the set evaluated after each epoch: "test" or "validation"
    optimizer: str = "sgd-momentum"  # a registered optimizer (clrbench.config.optimizers)
    # The optimizer's weight decay (None: its default; only optimizers that take one:
    # clrbench.config.optimizers) and a schedule-free optimizer's own linear warmup in steps
    # (the reference's ``warmup_steps``; None: 0).
    weight_decay: float | None = None
    optimizer_warmup_steps: int | None = None
    threads: int = 1  # TensorFlow intra-/inter-op threads per run
    trainer: str = "loop"  # "loop" (the lean loop), "fit" (Keras fit) or "stacked"
    # Evaluate every this many optimizer steps (counted across the run) as well as at each
    # epoch's end, to resolve time to target finer than an epoch; None: once per epoch.
    eval_every: int | None = None

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("threads", self.threads)
        self._check_data_and_model()
        self._check_split()
        if self.train_size is not None:
            check_positive_int("train_size", self.train_size)
            available = self.available - (self.validation_size or 0)
            if not 10 <= self.train_size <= available:
                raise ConfigError(f"train_size must be in 10..{available}, got {self.train_size}")
        if self.trainer not in TRAINERS:
            raise ConfigError(f"trainer must be one of {TRAINERS}, got {self.trainer!r}")
        self._check_optimizer()
        if self.trainer == "fit" and self.is_plugin:
            raise ConfigError("trainer 'fit' trains the built-in models only; use the loop")
        self._check_eval_every()

    def _check_optimizer(self) -> None:
        """A known optimizer, its weight decay and warmup, and a trainer that runs it."""
        if not isinstance(self.optimizer, str):
            raise ConfigError(f"optimizer must be a string, got {self.optimizer!r}")
        check_optimizer(self.optimizer)
        check_weight_decay(self.optimizer, self.weight_decay)
        warmup = self.optimizer_warmup_steps
        if warmup is not None:
            if not spec(self.optimizer).schedule_free:
                raise ConfigError(
                    f"optimizer_warmup_steps is a schedule-free optimizer's own warmup; "
                    f"optimizer {self.optimizer!r} has none (warm up with the schedule)"
                )
            if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
                raise ConfigError(f"optimizer_warmup_steps must be an integer >= 0, got {warmup!r}")
        if self.optimizer in CLASSIC:
            return
        if self.trainer == STACKED:
            raise ConfigError(
                f"optimizer {self.optimizer!r} cannot be stacked: the stacked trainer implements "
                f"{', '.join(CLASSIC)}; train it unstacked (--no-stack)"
            )
        if self.trainer == "fit" and spec(self.optimizer).schedule_free:
            raise ConfigError(
                f"optimizer {self.optimizer!r} trains on the lean loop (trainer 'loop'), which "
                "evaluates at its evaluation point x; not Keras fit"
            )

    @property
    def decay(self) -> float | None:
        """The weight decay the optimizer trains with (its default when none is given)."""
        return check_weight_decay(self.optimizer, self.weight_decay)

    def _check_eval_every(self) -> None:
        if self.eval_every is None:
            return
        check_positive_int("eval_every", self.eval_every)
        if self.eval_every > self.steps_per_epoch:
            raise ConfigError(
                f"eval_every must be at most the {self.steps_per_epoch} steps of an epoch (every "
                f"epoch's end is evaluated anyway), got {self.eval_every}"
            )
        if self.trainer != "loop":
            raise ConfigError(
                f"eval_every needs trainer 'loop' (the lean loop evaluates between its compiled "
                f"calls), got trainer {self.trainer!r}"
            )

    def _check_data_and_model(self) -> None:
        """A registered data set and model, or a plug-in (``package.module:attribute``) that
        gives both: its data is loaded and checked here (``clrbench.data.plugin``)."""
        if is_plugin(self.dataset) or is_plugin(self.model):
            if self.dataset != self.model:
                raise ConfigError(
                    f"a plug-in workload gives its data and its model: dataset and model must "
                    f"both be {self.dataset if is_plugin(self.dataset) else self.model!r} "
                    f"(set workload = ...), got {self.dataset!r} and {self.model!r}"
                )
            dataset_counts(self.dataset)  # imports and checks it: one ConfigError line
            return
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose {', '.join(DATASETS)}")
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose {', '.join(MODELS)}")

    @property
    def is_plugin(self) -> bool:
        """Whether this is a workload of one's own (``clrbench.workload_api``)."""
        return is_plugin(self.dataset)

    @property
    def num_classes(self) -> int:
        """The data set's number of classes (a plug-in's ``num_classes``)."""
        return dataset_classes(self.dataset)

    @property
    def chance(self) -> float:
        """Chance accuracy, 1 / the number of classes: what a diverged run scores."""
        return 1 / self.num_classes

    @property
    def available(self) -> int:
        """Examples in the data set's training part (before any split or subset)."""
        return dataset_counts(self.dataset)[0]

    def _check_split(self) -> None:
        if self.evaluate_on not in EVALUATE_ON:
            raise ConfigError(f"evaluate_on must be one of {EVALUATE_ON}, got {self.evaluate_on!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int):
            raise ConfigError(f"split_seed must be an integer, got {self.split_seed!r}")
        if self.validation_size is None:
            if self.evaluate_on == "validation":
                raise ConfigError("evaluate_on = 'validation' needs a validation_size")
            return
        check_positive_int("validation_size", self.validation_size)
        limit = self.available - 10
        if not 10 <= self.validation_size <= limit:
            raise ConfigError(f"validation_size must be in 10..{limit}, got {self.validation_size}")

    @property
    def train_count(self) -> int:
        """Training images per epoch: the subset, else the training set less any validation."""
        return self.train_size or self.available - (self.validation_size or 0)

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.train_count, self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def config(self) -> dict[str, Any]:
        """The plain values a run id hashes. Settings added after the first runs (the split,
        the evaluation set, the trainer, the model) appear only when they are not the default,
        so that older runs keep their ids (``clrbench.store.records.CONFIG_DEFAULTS`` reads
        them back)."""
        config: dict[str, Any] = {
            "dataset": self.dataset,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "train_size": self.train_size,
            "optimizer": self.optimizer,
            "threads": self.threads,
        }
        if self.validation_size is not None:
            config |= {"validation_size": self.validation_size, "split_seed": self.split_seed}
        if self.evaluate_on != "test":
            config["evaluate_on"] = self.evaluate_on
        if self.trainer != "loop":
            config["trainer"] = self.trainer
        if self.model != DEFAULT_MODEL:
            config["model"] = self.model
        if self.eval_every is not None:
            config["eval_every"] = self.eval_every
        if self.optimizer not in CLASSIC:  # (the classic optimizers' ids carry neither)
            config["weight_decay"] = self.decay
            if spec(self.optimizer).schedule_free:
                config["optimizer_warmup_steps"] = self.optimizer_warmup_steps or 0
        return config

    def evaluations_within(self, epoch: int) -> list[int]:
        """After how many of epoch ``epoch``'s steps the model is evaluated before the epoch's
        end (which always is): the run's step counts that are multiples of ``eval_every``, in
        integer arithmetic. Empty without ``eval_every``."""
        if self.eval_every is None:
            return []
        first, every = epoch * self.steps_per_epoch, self.eval_every
        last = first + self.steps_per_epoch - 1  # the epoch's end is not "within"
        return [k * every - first for k in range(first // every + 1, last // every + 1)]

    def to_dict(self) -> dict[str, Any]:
        """The ``[experiment]`` keys of the TOML shape, defaults left out where optional: the
        run id's content, less a ``train_size`` that is not set (TOML has no null)."""
        settings = self.config()
        if settings["train_size"] is None:
            del settings["train_size"]
        return settings


WORKLOAD_KEYS = tuple(Workload.__dataclass_fields__)
