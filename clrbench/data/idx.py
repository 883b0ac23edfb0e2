"""IDX files (the MNIST format) <-> uint8 arrays, checking magic, dimensions and length."""

from __future__ import annotations

import numpy as np

from clrbench.errors import DataError

IMAGE_SIDE = 28
IMAGE_MAGIC = 2051  # IDX: unsigned byte, 3 dimensions
LABEL_MAGIC = 2049  # IDX: unsigned byte, 1 dimension


def parse_idx(payload: bytes, is_images: bool, count: int, where: str) -> np.ndarray:
    """An IDX payload as a read-only array, checking magic, dims and length against its header."""
    magic, ndim = (IMAGE_MAGIC, 3) if is_images else (LABEL_MAGIC, 1)
    kind = "image" if is_images else "label"
    header_size = 4 * (1 + ndim)
    if len(payload) < header_size:
        raise DataError(
            f"{where}: truncated: {len(payload)} bytes, shorter than the "
            f"{header_size}-byte IDX {kind} header"
        )
    header = np.frombuffer(payload, dtype=">u4", count=1 + ndim)
    if int(header[0]) != magic:
        raise DataError(f"{where}: bad magic number {header[0]}, expected {magic} (IDX {kind}s)")
    dims = tuple(int(dim) for dim in header[1:])
    if dims[1:] != (IMAGE_SIDE, IMAGE_SIDE)[: ndim - 1]:
        raise DataError(
            f"{where}: wrong dimensions {dims}, expected (N, {IMAGE_SIDE}, {IMAGE_SIDE})"
        )
    expected_length = header_size + int(np.prod(dims))
    if len(payload) != expected_length:
        what = "truncated" if len(payload) < expected_length else "too long"
        raise DataError(
            f"{where}: {what}: header {dims} needs {expected_length} bytes, "
            f"file holds {len(payload)}"
        )
    if dims[0] != count:
        raise DataError(f"{where}: holds {dims[0]} {kind}s, expected {count}")
    # frombuffer over immutable bytes is already read-only: no copy of the 47 MB payload.
    return np.frombuffer(payload, dtype=np.uint8, offset=header_size).reshape(dims)


def idx_payload(array: np.ndarray) -> bytes:
    """The uncompressed IDX file (header + data) for a uint8 array, as the originals store it."""
    if array.dtype != np.uint8:
        raise DataError(f"expected uint8 data, got {array.dtype}")
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array).tobytes()
