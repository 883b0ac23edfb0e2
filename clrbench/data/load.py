"""Loading a dataset: where it is looked for, the verified read cache, the Keras download."""

from __future__ import annotations

import functools
import gzip
import numbers
import os
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from clrbench import quiet
from clrbench.data import generated, plugin
from clrbench.data.idx import idx_payload, parse_idx
from clrbench.data.registry import (
    DATASETS,
    FILE_ORDER,
    STANDARD_ORDER,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
    OtherDatasetError,
    check_md5,
    dataset_spec,
)
from clrbench.data.split import indices_record, readonly, split_indices, stratified_indices
from clrbench.errors import ConfigError, DataError

ENV_VAR = "CLRBENCH_DATA_DIR"
# Per blocking socket operation, not the whole download: an offline machine whose firewall
# drops packets must fail in seconds rather than hang, while a slow link still works.
DOWNLOAD_SOCKET_TIMEOUT_S = 30.0


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded, verified dataset: read-only uint8 arrays plus where they came from."""

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    checksums: dict[str, str]
    source: str
    # With a validation split: the held-out part of the training set, and how it was drawn.
    x_validation: np.ndarray | None = field(default=None, repr=False)
    y_validation: np.ndarray | None = field(default=None, repr=False)
    split: dict[str, object] | None = None

    def evaluation_set(self, evaluate_on: str) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels a run is evaluated on: ``"test"`` or ``"validation"``."""
        if evaluate_on == "test":
            return self.x_test, self.y_test
        validation = (self.x_validation, self.y_validation)
        if evaluate_on == "validation" and validation[0] is not None and validation[1] is not None:
            return validation[0], validation[1]
        raise ConfigError(f"no {evaluate_on!r} set to evaluate on (set validation_size)")


class _Arrays(NamedTuple):
    """The cached, verified content of one dataset source (arrays are read-only)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksums: tuple[tuple[str, str], ...]
    source: str


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    train_size: int | None = None,
    seed: int = 0,
    validation_size: int | None = None,
    split_seed: int = 0,
) -> Dataset:
    """Load and verify a registered dataset, optionally a stratified subset of its train set.

    With ``validation_size``, a stratified split of the training set (``split_indices``) is held
    out as the validation set first; ``train_size`` then subsets what remains.
    """
    if train_size is not None and (
        isinstance(train_size, bool) or not isinstance(train_size, numbers.Integral)
    ):
        raise ConfigError(f"train_size must be an integer, got {train_size!r}")
    if plugin.is_plugin(name):  # a workload of one's own: its load_data(), checked
        arrays = _plugin_arrays(name)
    else:
        spec = dataset_spec(name)
        arrays = _locate(spec, data_dir)
        name = spec.name
    x_train, y_train = arrays.x_train, arrays.y_train
    held_out: dict[str, Any] = {}
    if validation_size is not None:
        train, validation = split_indices(y_train, validation_size, split_seed)
        held_out["x_validation"] = readonly(x_train[validation])
        held_out["y_validation"] = readonly(y_train[validation])
        held_out["split"] = indices_record(train, validation, split_seed)
        x_train, y_train = readonly(x_train[train]), readonly(y_train[train])
    if train_size is not None:
        indices = stratified_indices(y_train, train_size, seed)
        x_train, y_train = readonly(x_train[indices]), readonly(y_train[indices])
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=arrays.x_test,
        y_test=arrays.y_test,
        checksums=dict(arrays.checksums),
        source=arrays.source,
        **held_out,
    )


def _locate(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> _Arrays:
    """Read spec's data from data_dir, else CLRBENCH_DATA_DIR, system folders, then Keras.

    A set CLRBENCH_DATA_DIR without the files (and no system folder with them) is an error:
    downloading instead would hide the user's mistake (and fails offline anyway).
    """
    if spec.generator is not None:  # made here, whatever the data folders hold
        return _generated(spec.name)
    if data_dir is not None:
        return _read_explicit_dir(spec, Path(data_dir))
    tried: list[str] = []
    env_value = os.environ.get(ENV_VAR)
    if not env_value:
        tried.append(f"{ENV_VAR} (not set)")
    # Unlike data_dir, these are shared by every dataset: a folder that lacks this dataset's
    # files, or holds another dataset's, is passed over rather than an error.
    roots = ([Path(env_value)] if env_value else []) + list(spec.system_dirs)
    for root in roots:
        files, problem = _find_files(spec, root)
        if files is None:
            tried.append(f"{root} ({problem})")
            continue
        try:
            return _read_files(spec, files)
        except OtherDatasetError as error:
            tried.append(f"{root} ({error})")
    if env_value:  # the user said where the data is: a wrong folder is an error, not a download
        folders = " or ".join(f"{folder}/" for folder in spec.folder_names)
        raise DataError(
            f"{ENV_VAR}={env_value} does not hold {spec.name}: {'; '.join(tried)}. "
            f"Put {_file_list()} there (or in its {folders} subfolder), point {ENV_VAR} at the "
            f"folder that has them, or unset it to let Keras download {spec.name}"
        )
    return _download(spec, tried)


def dataset_counts(name: str) -> tuple[int, int]:
    """Training and test examples of a registered data set or a plug-in's (whose data is then
    loaded and checked: the first mistake in it is a ConfigError line)."""
    if plugin.is_plugin(name):
        arrays = _plugin_arrays(name)
        return len(arrays.y_train), len(arrays.y_test)
    spec = dataset_spec(name)
    return spec.train_count, spec.test_count


def dataset_classes(name: str) -> int:
    """How many classes a registered data set or a plug-in's has (``num_classes``)."""
    if plugin.is_plugin(name):
        return int(plugin.plugin(name).num_classes)
    return dataset_spec(name).classes


def _plugin_arrays(path: str) -> _Arrays:
    arrays, checksums = plugin.plugin_arrays(path)
    return _Arrays(**arrays, checksums=tuple(checksums.items()), source=f"plug-in {path}")


@functools.lru_cache(maxsize=2)
def _generated(name: str) -> _Arrays:
    """A generated data set (``clrbench.data.generated``), verified against its checksums."""
    spec = DATASETS[name]
    assert spec.generator is not None
    arrays = generated.GENERATORS[spec.generator]()
    checksums = {key: generated.array_sha256(array) for key, array in arrays.items()}
    for key, digest in checksums.items():
        if digest != spec.array_sha256[key]:
            raise DataError(
                f"{name}: the generated {key} has SHA-256 {digest}, expected "
                f"{spec.array_sha256[key]} (another version of its generator, or of NumPy/SciPy: "
                f"pip install mnist1d=={generated.MNIST1D_VERSION})"
            )
    for array in arrays.values():
        readonly(array)
    return _Arrays(
        **arrays, checksums=tuple(checksums.items()), source=f"generated by {spec.generator}"
    )


def _read_explicit_dir(spec: DatasetSpec, root: Path) -> _Arrays:
    """Read from a directory the user named: anything missing there is an error."""
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist or is not a directory")
    files, problem = _find_files(spec, root)
    if files is None:
        folders = " or ".join(f"{root / folder}/" for folder in spec.folder_names)
        raise DataError(f"{problem}; {spec.name} needs {_file_list()} in {root} or {folders}")
    return _read_files(spec, files)


def _find_files(spec: DatasetSpec, root: Path) -> tuple[dict[str, Path] | None, str]:
    """The four files in root's dataset subfolder or root itself, or None and what is missing."""
    candidates = [root / folder for folder in spec.folder_names] + [root]
    existing = [directory for directory in candidates if directory.is_dir()]
    if not existing:
        return None, "no such directory"
    for directory in existing:
        found = {stem: _existing_variant(directory / stem) for stem in FILE_ORDER}
        files = {stem: path for stem, path in found.items() if path is not None}
        if len(files) == len(FILE_ORDER):
            return files, ""
    # Blame the dataset subfolder if there is one: that is where the user put the files.
    directory = existing[0]
    missing = [stem for stem in STANDARD_ORDER if _existing_variant(directory / stem) is None]
    if len(missing) == len(STANDARD_ORDER):
        return None, f"no {spec.name} IDX files in {directory}"
    names = ", ".join(f"{directory / stem}.gz" for stem in missing)
    return None, f"missing {names} (or the same without .gz)"


def _existing_variant(stem_path: Path) -> Path | None:
    """The .gz file if present, else the uncompressed one, else None."""
    for path in (stem_path.with_name(stem_path.name + ".gz"), stem_path):
        if path.is_file():
            return path
    return None


def _file_list() -> str:
    """The four expected file names, for messages."""
    return ", ".join(f"{stem}.gz" for stem in STANDARD_ORDER)


def _read_files(spec: DatasetSpec, files: dict[str, Path]) -> _Arrays:
    """Parse and verify the four files, through a cache keyed by path, size and mtime."""
    # abspath, not resolve(): source names the folder the user pointed at, symlinks or not.
    key = tuple((os.path.abspath(files[stem]), *_stat_key(files[stem])) for stem in FILE_ORDER)
    return _read_files_cached(spec.name, key)


def _stat_key(path: Path) -> tuple[int, int]:
    """Size and modification time, so an edited file is never served from the cache."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _read_files_cached(name: str, key: tuple[tuple[str, int, int], ...]) -> _Arrays:
    """Parse and verify the files named in key (cached: the train images are 47 MB)."""
    spec = DATASETS[name]
    paths = {stem: Path(entry[0]) for stem, entry in zip(FILE_ORDER, key, strict=True)}
    verified = {
        stem: _verify(spec, stem, _read_payload(paths[stem]), str(paths[stem]))
        for stem in FILE_ORDER
    }
    return _bundle(verified, source=str(paths[TRAIN_IMAGES].parent))


def _read_payload(path: Path) -> bytes:
    """The file's bytes, decompressed if it is a .gz, or a DataError naming it."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream (file cut short)") from None
    except (OSError, zlib.error) as error:
        raise DataError(f"{path}: cannot read or decompress: {error}") from None


def _verify(spec: DatasetSpec, stem: str, payload: bytes, where: str) -> tuple[np.ndarray, str]:
    """The payload as a checked array and its md5; structure first, as its errors say more."""
    is_images = stem in (TRAIN_IMAGES, TEST_IMAGES)
    count = spec.train_count if stem in (TRAIN_IMAGES, TRAIN_LABELS) else spec.test_count
    array = parse_idx(payload, is_images, count, where)
    return array, check_md5(spec, stem, payload, where)


def _bundle(verified: Mapping[str, tuple[np.ndarray, str]], source: str) -> _Arrays:
    """The verified arrays and checksums of the four files as one cacheable value."""
    return _Arrays(
        x_train=verified[TRAIN_IMAGES][0],
        y_train=verified[TRAIN_LABELS][0],
        x_test=verified[TEST_IMAGES][0],
        y_test=verified[TEST_LABELS][0],
        checksums=tuple((stem, verified[stem][1]) for stem in STANDARD_ORDER),
        source=source,
    )


def _download(spec: DatasetSpec, tried: list[str]) -> _Arrays:
    """The Keras download/cache fallback, or one DataError line listing everything tried."""
    try:
        return _load_from_keras(spec.name)
    except _DownloadError as error:
        tried.append(f"Keras download ({error})")
    raise DataError(
        f"{spec.name} data not found; tried: {'; '.join(tried)}. Point clrbench at a folder "
        f"holding {_file_list()} with --data-dir DIR or {ENV_VAR}=DIR"
    )


class _DownloadError(Exception):
    """Keras could neither find its cached copy nor download one."""


@functools.lru_cache(maxsize=2)
def _load_from_keras(name: str) -> _Arrays:
    """Load through keras.datasets (its cache or a download) and verify like the IDX files."""
    spec = DATASETS[name]
    previous_timeout = socket.getdefaulttimeout()
    if previous_timeout is None:
        socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        with quiet.startup_silenced():  # Keras imports TensorFlow: its start-up lines
            import keras  # imported here: TensorFlow takes seconds to import

        loader = getattr(keras.datasets, spec.keras_module)
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:  # keras raises a bare Exception on URL failures
        raise _DownloadError(" ".join(str(error).split()) or type(error).__name__) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    arrays = {
        TRAIN_IMAGES: x_train,
        TRAIN_LABELS: y_train,
        TEST_IMAGES: x_test,
        TEST_LABELS: y_test,
    }
    verified = {
        stem: _verify(
            spec,
            stem,
            idx_payload(np.asarray(arrays[stem])),
            f"Keras {spec.keras_module}.load_data() ({stem})",
        )
        for stem in FILE_ORDER
    }
    return _bundle(verified, source="keras")
