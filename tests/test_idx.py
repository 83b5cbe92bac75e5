"""The IDX reader and writer: round trips, every malformed file, and the real MNIST files."""
import gzip
import hashlib
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from vae_course.idx import IDX_DTYPES, IDXError, IDXHeader, parse_idx_header, read_idx, write_idx

SUFFIXES = ["", ".gz"]


def write_raw(path: Path, data: bytes) -> Path:
    """Write bytes as they are, gzip-compressed when the name ends in .gz."""
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def header(code: int, *shape: int) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


# --- round trips ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("code", sorted(IDX_DTYPES))
def test_round_trip_every_dtype(tmp_path, code, suffix):
    dtype = IDX_DTYPES[code][1].newbyteorder("=")
    if dtype.kind == "f":
        array = np.array([[0.0, -1.5, 3.25], [1e-3, np.pi, -7e10]], dtype=dtype)
    else:
        info = np.iinfo(dtype)
        array = np.array([[info.min, 0, info.max], [1, 2, info.max - 1]], dtype=dtype)
    path = tmp_path / f"a-idx{array.ndim}{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == dtype and back.dtype.isnative
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)
    assert list(tmp_path.iterdir()) == [path]  # atomic write: no temporary file left behind


def test_round_trip_accepts_big_endian_input_and_odd_shapes(tmp_path):
    big = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    write_idx(tmp_path / "big", big)
    np.testing.assert_array_equal(read_idx(tmp_path / "big"), big)
    for shape in [(0,), (5, 0, 2), (7,), (1, 1, 1, 1, 1)]:
        array = np.ones(shape, dtype=np.uint8)
        write_idx(tmp_path / "odd.gz", array)
        assert read_idx(tmp_path / "odd.gz").shape == shape


def test_write_idx_writes_the_documented_bytes(tmp_path):
    array = np.array([[1, 2, 3], [4, 5, 255]], dtype=np.uint8)
    write_idx(tmp_path / "x", array)
    assert (tmp_path / "x").read_bytes() == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255])
    shorts = np.array([1, -2], dtype=np.int16)
    write_idx(tmp_path / "s", shorts)
    assert (tmp_path / "s").read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 0xFF, 0xFE])
    # .gz output is reproducible and decompresses to the same bytes
    write_idx(tmp_path / "x.gz", array)
    first = (tmp_path / "x.gz").read_bytes()
    write_idx(tmp_path / "x.gz", array)
    assert (tmp_path / "x.gz").read_bytes() == first
    assert gzip.decompress(first) == (tmp_path / "x").read_bytes()


def test_write_idx_rejects_unsupported_dtypes_without_leaving_a_file(tmp_path):
    for bad in [np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool), np.zeros(3, dtype=np.uint16)]:
        with pytest.raises(ValueError, match="astype"):
            write_idx(tmp_path / "bad.gz", bad)
    assert list(tmp_path.iterdir()) == []


def test_parse_idx_header():
    parsed = parse_idx_header(header(0x08, 10000, 28, 28) + b"payload ignored")
    assert parsed == IDXHeader(0x08, np.dtype("u1"), (10000, 28, 28), 16)
    assert parse_idx_header(header(0x0D, 3)).dtype == np.dtype(">f4")


# --- malformed files -------------------------------------------------------------------------

MALFORMED = {
    # name: (file bytes, expected byte offset, words the message must contain)
    "wrong magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", 0, "two zero bytes"),
    "unknown dtype": (header(0x0A, 2) + b"ab", 2, "unknown type code 0x0A"),
    "truncated magic": (b"\x00\x00", 2, "truncated header"),
    "truncated sizes": (header(0x08, 2, 3)[:9], 9, "truncated header"),
    "empty file": (b"", 0, "truncated header"),
    "truncated payload": (header(0x08, 2, 3) + b"12345", 12 + 5, "truncated payload"),
    "trailing bytes": (header(0x08, 2, 3) + b"123456!!", 12 + 6, "2 extra bytes follow"),
    "shape mismatch": (header(0x0C, 4) + b"\x00" * 12, 8 + 12, "16 bytes"),
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_raise_idx_error_naming_file_offset_and_expectation(tmp_path, case, suffix):
    data, offset, words = MALFORMED[case]
    path = write_raw(tmp_path / f"broken{suffix}", data)
    with pytest.raises(IDXError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(path) in message
    assert f"byte offset {offset}:" in message and caught.value.offset == offset
    assert words in message


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("shape", [(2**31,), (2**32 - 1, 2**32 - 1, 2**32 - 1)])
def test_hostile_header_fails_fast_without_allocating_the_declared_size(tmp_path, suffix, shape):
    path = write_raw(tmp_path / f"hostile{suffix}", header(0x0E, *shape) + b"\x00" * 64)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(IDXError, match="truncated payload: the header declares"):
            read_idx(path)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 0.5
    assert peak < 8 * 2**20  # bytes: the file's size, not the 16 GiB (or 10**29 bytes) it claims


@pytest.mark.parametrize("name,content,words", [
    ("page.gz", b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "HTML"),
    ("page", b"\n  <html><head><title>Access denied</title></head></html>", "HTML"),
    ("image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG"),
    ("image.gz", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG"),
    ("pointer", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS"),
    ("error.json", b'{"error": "rate limited"}', "JSON"),
])  # gzip data under a name without .gz are read, not refused (test_faults.py, data section)
def test_files_that_are_not_idx_get_a_hint(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)  # written as is: an HTML page saved under a .gz name stays HTML
    with pytest.raises(IDXError) as caught:
        read_idx(path)
    assert words in str(caught.value)
    assert str(path) in str(caught.value)


def test_damaged_gzip_stream(tmp_path):
    good = gzip.compress(header(0x08, 1000) + bytes(range(256)) * 4)
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match="damaged or cut short"):
        read_idx(path)


# --- the real files ---------------------------------------------------------------------------

def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_real_mnist_files(mnist_dir):
    assert md5(mnist_dir / "t10k-images-idx3-ubyte.gz") == "9fb629c4189551a2d022fa330f9573f3"
    assert md5(mnist_dir / "t10k-labels-idx1-ubyte.gz") == "ec29112dd5afa0611ce80d1b7f02629c"
    assert md5(mnist_dir / "train-labels-idx1-ubyte.gz") == "d53e105ee54ea40749a09fcbcd1e9432"
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    train_labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.tolist()[:5] == [7, 2, 1, 0, 4]
    assert train_labels.shape == (60000,) and train_labels.tolist()[:5] == [5, 0, 4, 1, 9]
    assert images.max() == 255 and images.min() == 0
    digit_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(labels, minlength=10).tolist() == digit_counts


def test_real_fashion_mnist_files(fashion_dir):
    train = read_idx(fashion_dir / "train-images-idx3-ubyte.gz")
    test = read_idx(fashion_dir / "t10k-images-idx3-ubyte.gz")
    train_labels = read_idx(fashion_dir / "train-labels-idx1-ubyte.gz")
    test_labels = read_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz")
    assert train.shape == (60000, 28, 28) and test.shape == (10000, 28, 28)
    assert train.dtype == test.dtype == np.uint8
    assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
    assert np.bincount(train_labels).tolist() == [6000] * 10  # balanced classes
    assert np.bincount(test_labels).tolist() == [1000] * 10
