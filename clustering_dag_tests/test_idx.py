import gzip

import numpy as np
import pytest

from clustering_dag.core.errors import DataError
from clustering_dag.core.idx import read_idx, read_image_label_pair, write_idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, name, dtype):
    arr = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    write_idx(tmp_path / name, arr)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_real_header_layout(tmp_path):
    write_idx(tmp_path / "l.gz", np.array([7, 2, 1], np.uint8))
    raw = gzip.decompress((tmp_path / "l.gz").read_bytes())
    assert raw[:4] == b"\x00\x00\x08\x01" and int.from_bytes(raw[4:8], "big") == 3


def test_bad_magic(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 8))
    with pytest.raises(DataError, match=r"x\.gz is not an IDX file: bad magic"):
        read_idx(tmp_path / "x.gz")


def test_truncated_body(tmp_path):
    path = tmp_path / "imgs.gz"
    write_idx(path, np.zeros((5, 28, 28), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"imgs\.gz is truncated"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "imgs.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(DataError, match=r"imgs\.gz is a damaged or truncated gzip"):
        read_idx(path)


def test_not_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match=r"labels\.gz is named \.gz but is not a gzip file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.gz")


def test_count_mismatch(tmp_path):
    write_idx(tmp_path / "i.gz", np.zeros((4, 28, 28), np.uint8))
    write_idx(tmp_path / "l.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"item count mismatch: .*i\.gz has 4 images .*l\.gz has 3"):
        read_image_label_pair(tmp_path / "i.gz", tmp_path / "l.gz")


def test_label_out_of_range(tmp_path):
    write_idx(tmp_path / "i.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "l.gz", np.array([1, 12, 3], np.uint8))
    with pytest.raises(DataError, match=r"l\.gz: label 12 at item 1 is outside 0\.\.9"):
        read_image_label_pair(tmp_path / "i.gz", tmp_path / "l.gz")


def test_images_of_wrong_rank(tmp_path):
    write_idx(tmp_path / "i.gz", np.zeros((3, 784), np.uint8))
    write_idx(tmp_path / "l.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"expected images \(n, rows, cols\)"):
        read_image_label_pair(tmp_path / "i.gz", tmp_path / "l.gz")


@pytest.mark.parametrize("shape", [(2**31, 2**31, 2**31), (2**16, 2**16, 2**16, 2**16)])
def test_a_header_promising_too_much_is_refused_before_anything_is_read(tmp_path, shape):
    """A 60-byte .gz cannot make the reader decompress or allocate gigabytes; a shape whose size
    wraps a 64-bit integer to 0 (2^64) is no loophole."""
    header = bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(header + b"\x00" * 1000))
    with pytest.raises(DataError, match=r"bomb\.gz: its header declares shape .* more than the"):
        read_idx(path)


def test_a_file_longer_than_its_header_says_is_refused(tmp_path):
    path = tmp_path / "long.gz"
    write_idx(path, np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\x00"))
    with pytest.raises(DataError, match=r"long\.gz is longer than its header says"):
        read_idx(path)
