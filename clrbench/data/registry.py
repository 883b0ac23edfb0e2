"""The registered datasets: file names, counts, folders, and the MD5 of each original payload."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    classes: int = 10  # every registered data set: ten digits, garments or MNIST-1D shapes
    test_count: int = 10_000
    system_dirs: tuple[Path, ...] = ()  # searched after CLRBENCH_DATA_DIR, before the download
    # A data set made on this machine (``clrbench.data.generated.GENERATORS``) instead of read
    # from IDX files, and the SHA-256 of each of its arrays (x_train, y_train, x_test, y_test).
    generator: str | None = None
    array_sha256: Mapping[str, str] = field(default_factory=dict)


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
    "mnist1d": DatasetSpec(
        name="mnist1d",
        payload_md5={},
        folder_names=(),
        keras_module="",
        train_count=4000,
        test_count=1000,
        generator="mnist1d",
        # What mnist1d 0.0.2.post1's make_dataset(get_dataset_args()) draws (its default
        # arguments, seed 42), inputs as float32 and labels as uint8: clrbench.data.generated.
        array_sha256={
            "x_train": "d53506bddd12d3b72c7153b1ae7f34807724b1dd078a7273809bf9d0792319f6",
            "y_train": "6e13c7aab5f831266ec59efd193e310c511faefd71cfc5d39427c20337df4dc6",
            "x_test": "30addc43827c82aafa5db8bc97cea63349ca687e87db2f201cc4f5415d9a4ebd",
            "y_test": "9486539f99fcca7dc5923aba4d0cb5b7963f8e8e1f74398ca33a64ccb3b5b654",
        },
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
