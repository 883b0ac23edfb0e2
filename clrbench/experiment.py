"""Experiments: what to train. Frozen, validated once, expanded into one RunSpec per run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from clrbench.schedules import Schedule


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run's numbers (and so its id)."""

    label: str
    schedule: Schedule
    seed: int
    dataset: str = "mnist"
    epochs: int = 25
    batch_size: int = 128
    train_size: int | None = None
    optimizer: str = "sgd-momentum"
    lr_mode: str = "graph"
    threads: int = 1

    def config(self) -> dict[str, Any]:
        """Plain-value configuration: the content the run id hashes."""
        return {
            "label": self.label,
            "schedule": self.schedule.to_config(),
            "seed": self.seed,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "train_size": self.train_size,
            "optimizer": self.optimizer,
            "lr_mode": self.lr_mode,
            "threads": self.threads,
        }

    @property
    def run_id(self) -> str:
        """Readable and unique: ``<label>-s<seed>-<8 hex of the config hash>``."""
        digest = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()
        return f"{self.label}-s{self.seed}-{digest[:8]}"
