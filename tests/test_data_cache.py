"""The decompressed copy of a .gz IDX file: used only while it matches its source and checksum."""
import os

import numpy as np
import pytest

from vae_course import data
from vae_course.idx import write_idx


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "vae-course" / "decompressed"


def _images(seed: int, n: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _no_decompression(monkeypatch):
    def fail(path):
        raise AssertionError(f"{path} was decompressed although the cache holds it")
    monkeypatch.setattr(data, "read_idx", fail)


def test_the_first_read_fills_the_cache_and_the_next_is_served_from_it(tmp_path, cache, monkeypatch):
    source = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(source, _images(0))
    first = data.read_idx_cached(source)
    np.testing.assert_array_equal(first, _images(0))
    assert len(list(cache.glob("*.npy"))) == 1 and len(list(cache.glob("*.json"))) == 1
    _no_decompression(monkeypatch)
    second = data.read_idx_cached(source)
    np.testing.assert_array_equal(second, _images(0))
    assert second.dtype == np.uint8 and second.shape == (5, 28, 28)


def test_a_changed_source_is_read_again(tmp_path, cache):
    source = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(source, _images(0))
    data.read_idx_cached(source)
    write_idx(source, _images(1, n=6))  # another file under the same name (size and mtime change)
    os.utime(source, ns=(1, 1))  # even with an old timestamp
    np.testing.assert_array_equal(data.read_idx_cached(source), _images(1, n=6))


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty", "garbage record"])
def test_a_damaged_copy_is_never_served_and_is_repaired(tmp_path, cache, monkeypatch, damage):
    source = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(source, _images(2))
    data.read_idx_cached(source)
    copy = next(cache.glob("*.npy"))
    raw = bytearray(copy.read_bytes())
    if damage == "flip a byte":
        raw[-100] ^= 0xFF  # in the pixels, past the .npy header: only the checksum sees it
        copy.write_bytes(bytes(raw))
    elif damage == "truncate":
        copy.write_bytes(bytes(raw[:-50]))
    elif damage == "empty":
        copy.write_bytes(b"")
    else:
        next(cache.glob("*.json")).write_text("{not json")
    np.testing.assert_array_equal(data.read_idx_cached(source), _images(2))
    _no_decompression(monkeypatch)  # the copy was rewritten
    np.testing.assert_array_equal(data.read_idx_cached(source), _images(2))


def test_plain_idx_files_are_not_copied(tmp_path, cache):
    source = tmp_path / "train-images-idx3-ubyte"
    write_idx(source, _images(3))
    np.testing.assert_array_equal(data.read_idx_cached(source), _images(3))
    assert not cache.exists() or not any(cache.iterdir())


def test_an_unwritable_cache_only_costs_the_decompression(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setattr(data, "decompressed_cache_dir", lambda: blocker / "decompressed")
    source = tmp_path / "train-labels-idx1-ubyte.gz"
    labels = np.arange(10, dtype=np.uint8)
    write_idx(source, labels)
    np.testing.assert_array_equal(data.read_idx_cached(source), labels)
    np.testing.assert_array_equal(data.read_idx_cached(source), labels)


def test_load_split_reads_through_the_cache(mnist_dir, cache, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(mnist_dir))
    images, labels = data.load_split("mnist", "test")
    _no_decompression(monkeypatch)
    again, again_labels = data.load_split("mnist", "test")
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, again_labels)
