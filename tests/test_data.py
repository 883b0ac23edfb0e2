"""Tests for clrbench.data on the real MNIST files (and Fashion-MNIST where installed)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clrbench.data.idx import idx_payload
from clrbench.data.load import ENV_VAR, Dataset, load_dataset
from clrbench.data.registry import DATASETS
from clrbench.data.split import stratified_indices
from clrbench.errors import ClrbenchError, DataError

REPO = Path(__file__).resolve().parents[1]
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _mnist_dir() -> Path | None:
    """The real MNIST folder: CLRBENCH_DATA_DIR as CI sets it, else shared/ beside the repo."""
    for candidate in (os.environ.get(ENV_VAR), Path(__file__).parents[2] / "shared/data/mnist"):
        if candidate and all((Path(candidate) / f"{name}.gz").is_file() for name in FILES):
            return Path(candidate).resolve()
    return None


MNIST_DIR = _mnist_dir()
needs_mnist = pytest.mark.skipif(MNIST_DIR is None, reason="real MNIST files not found")
needs_fashion = pytest.mark.skipif(
    not all((FASHION_DIR / f"{name}.gz").is_file() for name in FILES),
    reason="Debian package dataset-fashion-mnist not installed",
)


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without CLRBENCH_DATA_DIR; tests that need it set it themselves."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    """The full real MNIST, loaded once."""
    if MNIST_DIR is None:
        pytest.skip("real MNIST files not found")
    return load_dataset("mnist", data_dir=MNIST_DIR)


def _payload(name: str) -> bytes:
    """The real uncompressed payload of one MNIST file."""
    return gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())


def _mnist_copy(directory: Path, replace: dict[str, bytes] | None = None) -> Path:
    """A folder of links to the real MNIST files, with some replaced by given .gz bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    replace = replace or {}
    for name in FILES:
        target = directory / f"{name}.gz"
        if name in replace:
            target.write_bytes(replace[name])
        else:
            target.symlink_to(MNIST_DIR / f"{name}.gz")
    return directory


def _gz(payload: bytes) -> bytes:
    """Fast gzip: the tests need a valid stream, not a small one."""
    return gzip.compress(payload, compresslevel=1)


@needs_mnist
def test_shapes_dtypes_and_readonly(mnist: Dataset) -> None:
    assert mnist.name == "mnist"
    assert mnist.x_train.shape == (60_000, 28, 28)
    assert mnist.y_train.shape == (60_000,)
    assert mnist.x_test.shape == (10_000, 28, 28)
    assert mnist.y_test.shape == (10_000,)
    for array in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        assert array.dtype == np.uint8
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        mnist.x_train[0, 0, 0] = 1


@needs_mnist
def test_labels_and_pixels_match_published_facts(mnist: Dataset) -> None:
    assert np.bincount(mnist.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == TEST_COUNTS
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.x_train.max() == 255
    assert mnist.x_train.mean() / 255 == pytest.approx(0.1306604763, abs=1e-9)


@needs_mnist
def test_checksums_and_source_recorded(mnist: Dataset) -> None:
    assert mnist.checksums == dict(DATASETS["mnist"].payload_md5)
    assert list(mnist.checksums) == list(FILES)
    assert mnist.source == str(MNIST_DIR)


@needs_mnist
def test_idx_payload_rebuilds_the_original_files(mnist: Dataset) -> None:
    # The Keras fallback verifies downloads by rebuilding the IDX bytes from the arrays.
    assert idx_payload(mnist.y_test) == _payload("t10k-labels-idx1-ubyte")
    assert idx_payload(mnist.x_test) == _payload("t10k-images-idx3-ubyte")


@needs_mnist
def test_repeated_loads_come_from_the_cache() -> None:
    first = load_dataset(data_dir=MNIST_DIR)
    second = load_dataset(data_dir=MNIST_DIR)
    assert second.x_train is first.x_train  # the same parsed array: not read again
    second.checksums["train-images-idx3-ubyte"] = "tampered"
    assert load_dataset(data_dir=MNIST_DIR).checksums == dict(DATASETS["mnist"].payload_md5)


@needs_mnist
def test_uncompressed_files_and_dataset_subfolder(tmp_path: Path) -> None:
    folder = _mnist_copy(tmp_path / "mnist")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{name}.gz").unlink()
        (folder / name).write_bytes(_payload(name))
    dataset = load_dataset(data_dir=tmp_path)
    assert dataset.source == str(folder)
    assert dataset.checksums == dict(DATASETS["mnist"].payload_md5)


def _truncated_payload() -> dict[str, bytes]:
    return {"t10k-labels-idx1-ubyte": _gz(_payload("t10k-labels-idx1-ubyte")[:-100])}


def _truncated_gzip() -> dict[str, bytes]:
    compressed = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes()
    return {"t10k-images-idx3-ubyte": compressed[: len(compressed) // 2]}


def _flipped_pixel() -> dict[str, bytes]:
    payload = bytearray(_payload("t10k-images-idx3-ubyte"))
    payload[16 + 5000] ^= 0xFF
    return {"t10k-images-idx3-ubyte": _gz(bytes(payload))}


def _bad_magic() -> dict[str, bytes]:
    payload = bytearray(_payload("train-labels-idx1-ubyte"))
    payload[3] = 0x02  # 2049 -> 2050
    return {"train-labels-idx1-ubyte": _gz(bytes(payload))}


def _wrong_dims() -> dict[str, bytes]:
    payload = bytearray(_payload("t10k-images-idx3-ubyte"))
    payload[8:16] = np.array([14, 56], dtype=">u4").tobytes()  # same byte count, wrong shape
    return {"t10k-images-idx3-ubyte": _gz(bytes(payload))}


@needs_mnist
@pytest.mark.parametrize(
    ("corrupt", "bad_file", "message"),
    [
        (_truncated_payload, "t10k-labels-idx1-ubyte", "truncated"),
        (_truncated_gzip, "t10k-images-idx3-ubyte", "truncated gzip"),
        (_flipped_pixel, "t10k-images-idx3-ubyte", "md5"),
        (_bad_magic, "train-labels-idx1-ubyte", "bad magic number 2050"),
        (_wrong_dims, "t10k-images-idx3-ubyte", "wrong dimensions"),
    ],
    ids=["truncated-payload", "truncated-gzip", "flipped-byte", "bad-magic", "wrong-dims"],
)
def test_corrupt_file_raises_data_error_naming_it(
    tmp_path: Path, corrupt, bad_file: str, message: str
) -> None:
    folder = _mnist_copy(tmp_path, corrupt())
    with pytest.raises(DataError, match=message) as raised:
        load_dataset(data_dir=folder)
    assert str(folder / f"{bad_file}.gz") in str(raised.value)
    assert "\n" not in str(raised.value)


@needs_mnist
def test_missing_file_in_data_dir_is_an_error(tmp_path: Path) -> None:
    folder = _mnist_copy(tmp_path)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing") as raised:
        load_dataset(data_dir=folder)
    assert str(folder / "train-labels-idx1-ubyte.gz") in str(raised.value)


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(data_dir=tmp_path / "nowhere")


@needs_mnist
def test_env_var_is_used_and_data_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = _mnist_copy(tmp_path / "env")
    monkeypatch.setenv(ENV_VAR, str(from_env))
    assert load_dataset().source == str(from_env)
    # The env folder is now corrupt: an explicit data_dir must not even look at it.
    (from_env / "t10k-labels-idx1-ubyte.gz").unlink()
    (from_env / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    explicit = _mnist_copy(tmp_path / "explicit")
    assert load_dataset(data_dir=explicit).source == str(explicit)
    with pytest.raises(DataError, match="t10k-labels"):
        load_dataset()


@needs_mnist
def test_stratified_subset(mnist: Dataset) -> None:
    subset = load_dataset(data_dir=MNIST_DIR, train_size=1000, seed=3)
    assert subset.x_train.shape == (1000, 28, 28)
    assert subset.y_train.shape == (1000,)
    expected = 1000 * np.array(TRAIN_COUNTS) / 60_000
    assert np.all(np.abs(np.bincount(subset.y_train, minlength=10) - expected) < 1)
    assert subset.x_test is mnist.x_test
    assert subset.y_test is mnist.y_test
    again = load_dataset(data_dir=MNIST_DIR, train_size=1000, seed=3)
    other = load_dataset(data_dir=MNIST_DIR, train_size=1000, seed=4)
    np.testing.assert_array_equal(again.x_train, subset.x_train)
    assert not np.array_equal(other.x_train, subset.x_train)
    # Sorted indices keep the original order: the subset is a subsequence of the train set.
    indices = stratified_indices(mnist.y_train, 1000, seed=3)
    assert np.all(np.diff(indices) > 0)
    np.testing.assert_array_equal(subset.x_train, mnist.x_train[indices])
    np.testing.assert_array_equal(subset.y_train, mnist.y_train[indices])


@needs_mnist
@pytest.mark.parametrize("size", [10, 11, 59_999, 60_000])
def test_subset_sizes_at_the_edges(size: int) -> None:
    subset = load_dataset(data_dir=MNIST_DIR, train_size=size)
    assert len(subset.y_train) == size
    expected = size * np.array(TRAIN_COUNTS) / 60_000
    assert np.all(np.abs(np.bincount(subset.y_train, minlength=10) - expected) < 1)


@needs_mnist
@pytest.mark.parametrize("size", [9, 0, -5, 60_001, 2.5, True])
def test_bad_train_size(size: object) -> None:
    with pytest.raises(ClrbenchError, match="train_size"):
        load_dataset(data_dir=MNIST_DIR, train_size=size)


def test_unknown_dataset() -> None:
    with pytest.raises(ClrbenchError, match="fashion_mnist, mnist"):
        load_dataset("cifar10")


@pytest.mark.slow
def test_import_does_not_import_tensorflow() -> None:
    code = (
        "import sys, clrbench.data.load; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.split() == ["False", "False"]


OFFLINE_SCRIPT = """
from clrbench.data.load import load_dataset
from clrbench.errors import DataError
try:
    load_dataset("mnist")
except DataError as error:
    print("DATAERROR", error)
else:
    print("DOWNLOADED")
"""


@pytest.mark.slow
def test_offline_failure_lists_tried_paths(tmp_path: Path) -> None:
    # A fresh process with an empty Keras home: Keras reads KERAS_HOME once, at import.
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env |= {"KERAS_HOME": str(tmp_path / "keras"), "HOME": str(tmp_path)}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    if "DOWNLOADED" in result.stdout:
        pytest.skip("this machine is online: the Keras download succeeded")
    lines = [line for line in result.stdout.splitlines() if line.startswith("DATAERROR")]
    assert lines, result.stdout + result.stderr
    message = lines[0]
    assert f"{ENV_VAR} (not set)" in message
    assert "Keras download" in message
    assert "--data-dir DIR" in message and ENV_VAR in message
    assert time.perf_counter() - start < 60


@needs_fashion
def test_fashion_mnist_from_the_debian_package() -> None:
    fashion = load_dataset("fashion_mnist")
    assert fashion.source == str(FASHION_DIR)
    assert fashion.x_train.shape == (60_000, 28, 28)
    assert fashion.x_test.shape == (10_000, 28, 28)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert fashion.checksums == dict(DATASETS["fashion_mnist"].payload_md5)


@needs_fashion
@needs_mnist
def test_env_folder_holding_mnist_is_passed_over_for_fashion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, str(MNIST_DIR))
    assert load_dataset("fashion_mnist").source == str(FASHION_DIR)
    with pytest.raises(DataError, match="is the mnist file, not fashion_mnist"):
        load_dataset("fashion_mnist", data_dir=MNIST_DIR)


WRONG_ENV_SCRIPT = """
import sys
from clrbench.data.load import load_dataset
from clrbench.errors import DataError
try:
    load_dataset("mnist")
except DataError as error:
    print("DATAERROR", error)
print("keras imported:", "keras" in sys.modules)
"""


@pytest.mark.parametrize("kind", ["empty folder", "no such folder", "three of four files"])
@pytest.mark.slow
def test_env_var_without_the_files_is_an_error_not_a_download(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "data"
    if kind == "empty folder":
        folder.mkdir()
    elif kind == "three of four files":
        folder.mkdir()
        for name in FILES[:3]:
            (folder / f"{name}.gz").write_bytes(b"")
    env = {**os.environ, ENV_VAR: str(folder), "KERAS_HOME": str(tmp_path / "keras")}
    result = subprocess.run(
        [sys.executable, "-c", WRONG_ENV_SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"DATAERROR {ENV_VAR}={folder} does not hold mnist: "), lines
    assert "tried: Keras download" not in lines[0] and "unset it" in lines[0]
    assert lines[1] == "keras imported: False"  # no download was even tried
    assert not (tmp_path / "keras").exists()


def test_cli_says_the_env_var_is_wrong_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from clrbench.cli.main import main

    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert main(["run", "--preset", "quick", "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"clrbench: error: {ENV_VAR}={tmp_path} does not hold mnist")
    assert not (tmp_path / "out").exists()


# --- the validation split (clrbench study) ---


@needs_mnist
def test_validation_split_is_stratified_disjoint_and_reproducible(mnist: Dataset) -> None:
    from clrbench.data.split import split_indices, split_record

    train, validation = split_indices(mnist.y_train, 10_000, seed=0)
    assert train.size == 50_000 and validation.size == 10_000
    assert np.intersect1d(train, validation).size == 0
    np.testing.assert_array_equal(np.union1d(train, validation), np.arange(60_000))
    expected = 10_000 * np.array(TRAIN_COUNTS) / 60_000  # each class in proportion, +-1
    assert np.all(np.abs(np.bincount(mnist.y_train[validation], minlength=10) - expected) < 1)
    again = split_indices(mnist.y_train, 10_000, seed=0)
    np.testing.assert_array_equal(again[1], validation)
    assert not np.array_equal(split_indices(mnist.y_train, 10_000, seed=1)[1], validation)
    record = split_record(mnist.y_train, 10_000, 0)
    assert record == split_record(mnist.y_train, 10_000, 0)
    assert (
        record["validation_sha256"] != split_record(mnist.y_train, 10_000, 1)["validation_sha256"]
    )
    assert (record["train_examples"], record["validation_examples"]) == (50_000, 10_000)


@needs_mnist
def test_split_dataset_holds_out_validation_from_training_and_keeps_test(mnist: Dataset) -> None:
    from clrbench.data.split import split_indices

    split = load_dataset(data_dir=MNIST_DIR, validation_size=10_000, split_seed=0, train_size=1000)
    train, validation = split_indices(mnist.y_train, 10_000, seed=0)
    np.testing.assert_array_equal(split.x_validation, mnist.x_train[validation])
    np.testing.assert_array_equal(split.y_validation, mnist.y_train[validation])
    # train_size subsets the train part only: never a validation image
    subset = train[stratified_indices(mnist.y_train[train], 1000, seed=0)]
    np.testing.assert_array_equal(split.x_train, mnist.x_train[subset])
    assert np.intersect1d(subset, validation).size == 0
    # the test set is the whole, untouched test set; evaluation picks one or the other
    assert split.x_test is mnist.x_test and split.y_test is mnist.y_test
    assert split.evaluation_set("validation")[1] is split.y_validation
    assert split.evaluation_set("test")[1] is mnist.y_test
    assert split.split["validation_examples"] == 10_000
    with pytest.raises(ClrbenchError, match="validation"):
        mnist.evaluation_set("validation")  # no split: nothing to validate on


@needs_mnist
@pytest.mark.parametrize("size", [9, 59_991, 2.5, True])
def test_bad_validation_size(size: object) -> None:
    with pytest.raises(ClrbenchError, match="validation_size"):
        load_dataset(data_dir=MNIST_DIR, validation_size=size)
