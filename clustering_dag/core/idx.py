"""Reading and writing IDX files (the MNIST format), with full validation.

IDX layout: a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, ``ndim`` big-endian uint32
dimensions, then the data in row-major order. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from clustering_dag.core.arrays import Splits
from clustering_dag.core.datasets import FILES, DatasetSpec
from clustering_dag.core.errors import MAX_FILE_BYTES, DataError

# IDX type codes -> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}


def _open(path: Path):
    """The file's bytes as a stream: decompressed on the fly for ``.gz``."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    if path.suffix != ".gz":
        return fh
    start = fh.read(2)
    fh.seek(0)
    if start != b"\x1f\x8b":
        fh.close()
        raise DataError(
            f"{path} is named .gz but is not a gzip file (first bytes {start!r}); "
            "re-download it or replace it with the original file."
        )
    return gzip.GzipFile(fileobj=fh, mode="rb")


def _read_exactly(stream, n: int, path: Path) -> bytes:
    try:
        return stream.read(n)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{path} is a damaged or truncated gzip file ({exc}); "
            "delete it and re-download it or copy it again."
        ) from None


def read_idx(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> np.ndarray:
    """Read one IDX file (optionally ``.gz``) into a native-endian array, validating the header
    before the data: at most what the header promises (and ``max_bytes``) is ever read or held."""
    path = Path(path)
    with _open(path) as stream:
        magic = _read_exactly(stream, 4, path)
        if len(magic) < 4:
            raise DataError(f"{path} is truncated: {len(magic)} bytes, not even an IDX header.")
        zero, code, ndim = int.from_bytes(magic[:2], "big"), magic[2], magic[3]
        if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
            raise DataError(
                f"{path} is not an IDX file: bad magic number 0x{magic.hex()} "
                "(expected 0x0000<type><ndim>, e.g. 0x00000803 for images, 0x00000801 for labels)."
            )
        dims = _read_exactly(stream, 4 * ndim, path)
        if len(dims) < 4 * ndim:
            raise DataError(f"{path} is truncated inside its header ({4 + len(dims)} bytes).")
        shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
        dtype = _IDX_DTYPES[code]
        expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
        if expected > max_bytes:
            raise DataError(
                f"{path}: its header declares shape {shape}, {expected:,} bytes of data, more than "
                f"the {max_bytes:,} an IDX file may hold here; it is not a dataset file."
            )
        data = _read_exactly(stream, expected, path)
        extra = _read_exactly(stream, 1, path)
    if len(data) != expected or extra:
        what = "truncated" if len(data) < expected else "longer than its header says"
        held = f"{len(data)} bytes" if len(data) < expected else "more"
        raise DataError(
            f"{path} is {what}: header declares shape {shape} ({expected} bytes of data), "
            f"file holds {held}. Re-download or copy the file again."
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as IDX (gzip-compressed when the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    code = _DTYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = header + array.astype(_IDX_DTYPES[code]).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def read_image_label_pair(images_path: Path, labels_path: Path, n_classes: int = 10):
    """Read an images/labels pair, checking they agree and that labels lie in ``0..n_classes-1``.

    Returns ``(images uint8 [n, h, w], labels int64 [n])``.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(
            f"{images_path} holds an array of shape {images.shape}; expected images (n, rows, cols)."
        )
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds an array of shape {labels.shape}; expected labels (n,).")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"item count mismatch: {images_path} has {images.shape[0]} images but "
            f"{labels_path} has {labels.shape[0]} labels. The two files are from different sets."
        )
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{labels_path}: label {int(labels[i])} at item {i} is outside 0..{n_classes - 1}."
        )
    return images, labels.astype(np.int64)


def load_image_dataset(spec: DatasetSpec, folder: Path) -> Splits:
    """Read and validate the four IDX files of ``spec`` from ``folder``.

    Pixels become float32 in [0, 1], flattened to (n, rows*cols); ``meta`` records the image
    shape and the source folder.
    """
    train_img, train_y = read_image_label_pair(folder / FILES["train_images"], folder / FILES["train_labels"])
    test_img, test_y = read_image_label_pair(folder / FILES["test_images"], folder / FILES["test_labels"])
    if train_img.shape[1:] != test_img.shape[1:]:
        raise DataError(
            f"{folder}: train images are {train_img.shape[1:]} but test images are "
            f"{test_img.shape[1:]}; the files come from different datasets."
        )
    for split, n, want in (("train", len(train_y), spec.n_train), ("test", len(test_y), spec.n_test)):
        if want is not None and n != want:
            raise DataError(
                f"{folder}: the {split} split of {spec.name!r} has {n} items, expected {want}. "
                "The files are incomplete or belong to another dataset."
            )
    shape = (int(train_img.shape[1]), int(train_img.shape[2]))

    def to_float(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0))

    return Splits(to_float(train_img), train_y, to_float(test_img), test_y,
                  meta={"image_shape": list(shape), "source": str(folder), "dataset": spec.name})
