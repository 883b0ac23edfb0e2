"""Stratified subsets of a training set: the train-size subset and the validation split."""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

from clrbench.errors import ConfigError

MIN_TRAIN_SIZE = 10


def split_indices(
    labels: np.ndarray, validation_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A stratified train / validation split of the training set: (train, validation) indices.

    The validation part is ``stratified_indices(labels, validation_size, seed)`` (class counts
    proportional to the whole set's); the train part is everything else. Both sorted.
    """
    if isinstance(validation_size, bool) or not isinstance(validation_size, numbers.Integral):
        raise ConfigError(f"validation_size must be an integer, got {validation_size!r}")
    if not MIN_TRAIN_SIZE <= validation_size <= len(labels) - MIN_TRAIN_SIZE:
        raise ConfigError(
            f"validation_size must be between {MIN_TRAIN_SIZE} and "
            f"{len(labels) - MIN_TRAIN_SIZE}, got {validation_size}"
        )
    validation = stratified_indices(labels, int(validation_size), seed)
    train = np.setdiff1d(np.arange(len(labels)), validation, assume_unique=True)
    return train, validation


def split_record(labels: np.ndarray, validation_size: int, seed: int) -> dict[str, object]:
    """What identifies a split: seed, sizes, and the SHA-256 of its validation indices (int64,
    little-endian), so that two records of the same split can be checked for equality."""
    return indices_record(*split_indices(labels, validation_size, seed), seed)


def indices_record(train: np.ndarray, validation: np.ndarray, seed: int) -> dict[str, object]:
    digest = hashlib.sha256(validation.astype("<i8").tobytes()).hexdigest()
    return {
        "split_seed": int(seed),
        "train_examples": int(train.size),
        "validation_examples": int(validation.size),
        "validation_sha256": digest,
    }


def stratified_indices(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded subset whose class counts are largest-remainder shares of size."""
    if not MIN_TRAIN_SIZE <= size <= len(labels):
        raise ConfigError(
            f"train_size must be between {MIN_TRAIN_SIZE} and {len(labels)} "
            f"(the number of training images), got {size}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    quotas = size * counts / len(labels)
    allocation = np.floor(quotas).astype(np.int64)
    # Stable sort: equal remainders go to the lower class, so the allocation is deterministic.
    by_remainder = np.argsort(-(quotas - allocation), kind="stable")
    allocation[by_remainder[: size - allocation.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=take, replace=False)
        for label, take in zip(classes, allocation, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def readonly(array: np.ndarray) -> np.ndarray:
    """The array, marked read-only so every Dataset array behaves the same."""
    array.flags.writeable = False
    return array
