"""The registered datasets: file names, counts, folders, and the MD5 of each original payload."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clrbench.errors import ConfigError, DataError

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
STANDARD_ORDER = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
# Labels first and small files first: a wrong or corrupt folder fails before the 47 MB read.
FILE_ORDER = (TEST_LABELS, TRAIN_LABELS, TEST_IMAGES, TRAIN_IMAGES)


@dataclass(frozen=True)
class DatasetSpec:
    """What one registered dataset looks like on disk and where else it can come from."""

    name: str
    payload_md5: Mapping[str, str]  # uncompressed file name -> md5 of the whole payload
    folder_names: tuple[str, ...]  # subfolders of a data directory that may hold the files
    keras_module: str  # keras.datasets.<module>.load_data() is the download fallback
    train_count: int = 60_000
    test_count: int = 10_000
    system_dirs: tuple[Path, ...] = ()  # searched after CLRBENCH_DATA_DIR, before the download


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        # Published MD5s of the original LeCun/Cortes/Burges uncompressed files.
        payload_md5={
            TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
            TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
            TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
            TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
        },
        folder_names=("mnist",),
        keras_module="mnist",
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        # Computed from the payloads of Debian's dataset-fashion-mnist
        # (0.0~git20200523.55506a9-1). Its .gz files are re-packed (gzip header without file
        # name, new mtime), so they do not match Zalando's published .gz MD5s; but these payload
        # MD5s equal the uncompressed-file MD5s that other public Fashion-MNIST loaders list
        # beside Zalando's .gz MD5s, so the payloads are Zalando's originals.
        payload_md5={
            TRAIN_IMAGES: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            TRAIN_LABELS: "9018921c3c673c538a1fc5bad174d6f9",
            TEST_IMAGES: "8181f5470baa50b63fa0f6fddb340f0a",
            TEST_LABELS: "15d484375f8d13e6eb1aabb0c3f46965",
        },
        folder_names=("fashion_mnist", "fashion-mnist"),
        keras_module="fashion_mnist",
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
}


class OtherDatasetError(DataError):
    """A file that is verifiably another registered dataset's (so a search may go on)."""


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry for name, or a ConfigError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {known}") from None


def check_md5(spec: DatasetSpec, stem: str, payload: bytes, where: str) -> str:
    """The payload's md5, or a DataError if it differs from spec's reference."""
    digest = hashlib.md5(payload).hexdigest()
    expected = spec.payload_md5.get(stem)
    if expected is None or digest == expected:
        return digest
    for other in DATASETS.values():
        if other.name != spec.name and other.payload_md5.get(stem) == digest:
            raise OtherDatasetError(f"{where} is the {other.name} file, not {spec.name}")
    raise DataError(
        f"{where}: md5 of the uncompressed payload is {digest}, expected {expected} "
        f"for {spec.name} (corrupt or not the original file)"
    )
