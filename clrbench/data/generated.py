"""Data sets generated on this machine instead of read from files: MNIST-1D.

MNIST-1D (Greydanus & Kobak, 2020; ``pip install mnist1d``) is drawn by its package from ten
hand-made templates with seeded random transforms: 4,000 training and 1,000 test sequences of
40 values, ten classes, standardised by the generator. It is made with the package's own
``make_dataset(get_dataset_args())`` (its published default arguments, seed 42), never through
``get_dataset``, which downloads a pickle. The generator seeds NumPy's global generator; that
state is put back afterwards, so loading it changes nothing else in the process.

The arrays are verified like the IDX payloads: the SHA-256 of each (inputs as float32,
little-endian; labels as uint8) must equal the value recorded in the registry, so a change in
the generator (another version of mnist1d, of NumPy or SciPy changing its draws) is an error,
not a silently different benchmark.
"""

from __future__ import annotations

import hashlib

import numpy as np

from clrbench.errors import DataError

MNIST1D_VERSION = "0.0.2.post1"  # the generator the recorded checksums are of (pyproject pins it)


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (the registry's checksum of a generated array)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def mnist1d() -> dict[str, np.ndarray]:
    """MNIST-1D's four arrays: ``x_train`` (4000, 40) float32, ``y_train`` uint8, ``x_test``,
    ``y_test``; a DataError line when the package is missing."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset  # type: ignore[import-untyped]
    except ImportError as exc:
        raise DataError(
            f"mnist1d is not installed ({exc}); pip install mnist1d=={MNIST1D_VERSION}"
        ) from None
    state = np.random.get_state()  # noqa: NPY002 (the generator's global state, put back)
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return {
        "x_train": np.asarray(data["x"], dtype="<f4"),
        "y_train": np.asarray(data["y"], dtype=np.uint8),
        "x_test": np.asarray(data["x_test"], dtype="<f4"),
        "y_test": np.asarray(data["y_test"], dtype=np.uint8),
    }


GENERATORS = {"mnist1d": mnist1d}
