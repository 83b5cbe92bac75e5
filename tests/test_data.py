"""Dataset registry, resolution order, downloads (offline: file:// mirrors and fake openers),
loading, and the Batches fast path."""
import dataclasses
import gzip
import hashlib
import socket
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_course import downloads
from vae_course.data import Batches, load_split, load_tensors
from vae_course.datasets import DATASETS, DatasetUnavailable, cache_dir, dataset_name, locate, system_dirs
from vae_course.downloads import download, verify
from vae_course.idx import write_idx

REAL_OPEN_URL = downloads._open_url
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No dataset settings from the environment, a private cache and private system folders,
    and no network at all."""
    monkeypatch.delenv("VAE_COURSE_DATA", raising=False)
    monkeypatch.delenv("VAE_COURSE_DATASET", raising=False)
    monkeypatch.delenv("VAE_COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path / "xdg-data"))

    def offline_open_url(url, timeout):
        if not url.startswith("file:"):
            raise urllib.error.URLError(socket.gaierror(-3, "network disabled in tests"))
        return REAL_OPEN_URL(url, timeout)

    monkeypatch.setattr(downloads, "_open_url", offline_open_url)


def make_files(directory: Path, n_train: int = 30, n_test: int = 12, label: int = 0) -> dict:
    """Write a tiny dataset with the real file names; every label equals ``label``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(label)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.full(n_train, label, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.full(n_test, label, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / name, array)
    return arrays


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake 'mnist' whose registry entry matches files in tmp_path/'published'."""
    published = tmp_path / "published"
    arrays = make_files(published, label=7)
    info = dataclasses.replace(
        DATASETS["mnist"],
        md5={name: md5(published / name) for name in FILES},
        content_md5={name: hashlib.md5(gzip.decompress((published / name).read_bytes())).hexdigest()
                     for name in FILES},
        mirrors=[(tmp_path / "mirror-a").as_uri() + "/", (tmp_path / "mirror-b").as_uri() + "/"],
    )
    monkeypatch.setitem(DATASETS, "mnist", info)
    return {"info": info, "published": published, "arrays": arrays, "tmp": tmp_path,
            "system": tmp_path / "xdg-data" / "datasets" / "mnist"}


# --- registry and names ---------------------------------------------------------------------

def test_registry():
    mnist, fashion = DATASETS["mnist"], DATASETS["fashion-mnist"]
    assert mnist.md5 == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    assert fashion.md5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert mnist.class_names == tuple("0123456789")
    for info in (mnist, fashion):
        assert set(info.files) == {"train-images", "train-labels", "test-images", "test-labels"}
        assert sorted(info.files.values()) == sorted(info.md5) == sorted(info.content_md5)
        assert all(len(h) == 32 and int(h, 16) >= 0 for h in [*info.md5.values(), *info.content_md5.values()])
        assert len(info.mirrors) >= 2 and all(m.startswith(("http://", "https://")) for m in info.mirrors)
        assert not any("yann.lecun.com" in m for m in info.mirrors)  # refuses scripts
        assert len(info.class_names) == 10


def test_dataset_name_argument_then_environment_then_default(monkeypatch):
    assert dataset_name() == "mnist"
    monkeypatch.setenv("VAE_COURSE_DATASET", "fashion-mnist")
    assert dataset_name() == "fashion-mnist"
    assert dataset_name("mnist") == "mnist"
    assert dataset_name("Fashion_MNIST") == "fashion-mnist"
    with pytest.raises(ValueError, match="'cifar'.*argument.*mnist, fashion-mnist"):
        dataset_name("cifar")
    monkeypatch.setenv("VAE_COURSE_DATASET", "kmnist")
    with pytest.raises(ValueError, match=r"\$VAE_COURSE_DATASET"):
        dataset_name()


def test_cache_dir(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "xdg-cache" / "vae-course"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "vae-course"


# --- resolution order -----------------------------------------------------------------------

def test_resolution_order_root_env_cache_system(fake, monkeypatch):
    tmp = fake["tmp"]
    root, env, system = tmp / "root", tmp / "env", fake["system"]
    cache = cache_dir() / "mnist"
    for label, directory in enumerate([root, env / "mnist", cache, system]):
        make_files(directory, label=label)
    monkeypatch.setenv("VAE_COURSE_DATA", str(env))

    assert locate(root=root, download=False) == root
    assert load_split(split="test", root=root, download=False)[1][0] == 0
    assert locate(download=False) == env / "mnist"  # $VAE_COURSE_DATA/<name>
    assert load_split(split="test", download=False)[1][0] == 1
    monkeypatch.delenv("VAE_COURSE_DATA")
    assert locate(download=False) == cache
    assert load_split(split="test", download=False)[1][0] == 2
    for name in FILES:
        (cache / name).unlink()
    assert locate(download=False) == system
    assert load_split(split="test", download=False)[1][0] == 3
    # a root without the files falls through to the next place
    assert locate(root=tmp / "nowhere", download=False) == system


def test_root_and_env_accept_the_folder_itself_or_a_subfolder_per_dataset(fake, monkeypatch):
    tmp = fake["tmp"]
    make_files(tmp / "flat")
    make_files(tmp / "nested" / "mnist")
    assert locate(root=tmp / "flat", download=False) == tmp / "flat"
    assert locate(root=tmp / "nested", download=False) == tmp / "nested" / "mnist"
    monkeypatch.setenv("VAE_COURSE_DATA", str(tmp / "flat"))
    assert locate(download=False) == tmp / "flat"


def test_locate_needs_only_the_requested_files(fake):
    partial = fake["tmp"] / "partial"
    make_files(partial)
    (partial / "train-images-idx3-ubyte.gz").unlink()
    assert locate(root=partial, download=False, files=["test-images", "test-labels"]) == partial
    assert locate(root=partial, download=False, files=["t10k-images-idx3-ubyte.gz"]) == partial
    assert load_split(split="test", root=partial, download=False)[0].shape == (12, 28, 28)
    with pytest.raises(DatasetUnavailable, match="missing train-images-idx3-ubyte.gz"):
        locate(root=partial, download=False)
    with pytest.raises(ValueError, match="unknown file 'validation-images'"):
        locate(root=partial, files=["validation-images"])


def test_gunzipped_files_are_accepted_and_verified_by_content(fake):
    plain = fake["tmp"] / "plain"
    plain.mkdir()
    for name in FILES:
        content = gzip.decompress((fake["published"] / name).read_bytes())
        (plain / name.removesuffix(".gz")).write_bytes(content)
    assert locate(root=plain, download=False) == plain
    images, labels = load_split(split="train", root=plain, download=False)
    np.testing.assert_array_equal(images, fake["arrays"]["train-images-idx3-ubyte.gz"])
    assert verify(root=plain) == {name: True for name in FILES}


def test_dataset_unavailable_lists_places_and_remedies(fake):
    with pytest.raises(DatasetUnavailable) as caught:
        locate(root=fake["tmp"] / "empty", download=False)
    message = str(caught.value)
    first_line = message.splitlines()[0]
    assert "mnist" in first_line and "downloading was not allowed" in first_line
    for words in ["VAE_COURSE_DATA", "vae-course data download --dataset mnist",
                  "apt-get install dataset-fashion-mnist", "VAE_COURSE_DATASET=fashion-mnist",
                  "internet", str(fake["tmp"] / "empty"), str(cache_dir() / "mnist"),
                  str(fake["system"])]:
        assert words in message
    assert isinstance(caught.value, RuntimeError)


# --- downloading (offline: file:// mirrors and fake openers) -----------------------------------

def test_download_checksum_mismatch_moves_on_to_the_next_mirror(fake):
    tmp = fake["tmp"]
    (tmp / "mirror-a").mkdir()
    for name in FILES:  # the first mirror serves an error page under every name
        (tmp / "mirror-a" / name).write_bytes(b"<!DOCTYPE html><html>Service unavailable</html>")
    make_files(tmp / "mirror-b", label=7)  # the second one the real thing
    dest = download(progress=True)  # the tqdm bar goes to the captured stderr
    assert dest == cache_dir() / "mnist"
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)  # no leftover temporary files
    assert verify() == {name: True for name in FILES}
    images, labels = load_split(split="train", download=False)
    np.testing.assert_array_equal(images, fake["arrays"]["train-images-idx3-ubyte.gz"])


def test_download_keeps_verified_files_and_fetches_only_what_is_missing(fake, monkeypatch):
    make_files(fake["tmp"] / "mirror-a", label=7)
    dest = cache_dir() / "mnist"
    make_files(dest, label=7)
    (dest / "t10k-labels-idx1-ubyte.gz").unlink()
    (dest / "train-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    fetched = []

    def recording_open_url(url, timeout):
        fetched.append(Path(url).name)
        return REAL_OPEN_URL(url, timeout)

    monkeypatch.setattr(downloads, "_open_url", recording_open_url)
    download(progress=False)
    assert sorted(fetched) == ["t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert verify() == {name: True for name in FILES}


def test_locate_downloads_into_the_cache_when_nothing_is_found(fake):
    make_files(fake["tmp"] / "mirror-b", label=7)  # mirror-a does not exist: a 'missing file'
    x, y = load_tensors(split="test", subset=5)
    assert x.shape == (5, 1, 28, 28) and y.tolist() == [7] * 5
    assert sorted(p.name for p in (cache_dir() / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                                          "t10k-labels-idx1-ubyte.gz"]


def test_all_mirrors_failing_raises_dataset_unavailable_with_remedies(fake):
    tmp = fake["tmp"]
    for mirror in ("mirror-a", "mirror-b"):
        (tmp / mirror).mkdir()
        for name in FILES:
            (tmp / mirror / name).write_bytes(b"\x00\x00\x08\x01 truncated")
    with pytest.raises(DatasetUnavailable) as caught:
        locate()  # all four files, downloading allowed
    message = str(caught.value)
    assert message.splitlines()[0].startswith("mnist: could not download")
    assert "mirror-a" in message and "mirror-b" in message and "MD5 mismatch" in message
    assert "vae-course data download" in message and "VAE_COURSE_DATA" in message
    assert not any((cache_dir() / "mnist").iterdir())  # nothing half-written left behind


def test_offline_fails_fast_and_skips_unreachable_mirrors(monkeypatch):
    calls = []

    def unreachable(url, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(downloads, "_open_url", unreachable)
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailable) as caught:
        download("mnist", progress=False)
    assert time.perf_counter() - start < 1
    assert len(calls) == len(DATASETS["mnist"].mirrors)  # one try per mirror, not per file
    assert all(timeout <= 30 for _, timeout in calls)
    message = str(caught.value)
    assert "name resolution" in message and "skipped" in message
    assert "connect to the internet" in message


def test_offline_fashion_with_no_copy_anywhere_says_what_to_do():
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion-mnist", "test")


def test_offline_switch_never_touches_the_network(fake, monkeypatch):
    calls = []

    def no_network(url, timeout):
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-3, "network disabled in tests"))

    monkeypatch.setattr(downloads, "_open_url", no_network)
    monkeypatch.setenv("VAE_COURSE_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable) as caught:
        load_tensors("mnist", "test")
    message = str(caught.value)
    assert message.splitlines()[0] == ("mnist: not downloading t10k-images-idx3-ubyte.gz, "
                                       "t10k-labels-idx1-ubyte.gz: $VAE_COURSE_OFFLINE=1 turns downloading off")
    assert "unset $VAE_COURSE_OFFLINE" in message and "VAE_COURSE_DATA" in message
    assert str(fake["system"]) in message  # where it looked
    assert calls == [] and not cache_dir().exists()  # no network, no empty cache folder either
    with pytest.raises(DatasetUnavailable, match="VAE_COURSE_OFFLINE=1"):
        download("mnist", progress=False)  # an explicit download is refused too
    assert calls == []
    # files already complete in the destination are fine: nothing needs downloading
    make_files(cache_dir() / "mnist", label=7)
    assert download("mnist", progress=False) == cache_dir() / "mnist"
    assert calls == []
    # 0 (or unset) means online: the mirrors are tried again
    monkeypatch.setenv("VAE_COURSE_OFFLINE", "0")
    (cache_dir() / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailable, match="could not download t10k-labels"):
        download("mnist", progress=False)
    assert [Path(url).name for url in calls] == ["t10k-labels-idx1-ubyte.gz"] * 2  # both mirrors


def test_system_folders_follow_the_xdg_data_dirs_spec(fake, monkeypatch):
    monkeypatch.delenv("XDG_DATA_DIRS")
    expected = [Path("/usr/local/share/datasets/fashion-mnist"), Path("/usr/share/datasets/fashion-mnist")]
    assert system_dirs("fashion-mnist") == expected
    monkeypatch.setenv("XDG_DATA_DIRS", "")  # empty counts as unset
    assert system_dirs("fashion-mnist") == expected
    tmp = fake["tmp"]
    first, second = tmp / "first", tmp / "second"
    monkeypatch.setenv("XDG_DATA_DIRS", f"{first}:relative/share::{second}")  # relative: ignored
    assert system_dirs("mnist") == [first / "datasets" / "mnist", second / "datasets" / "mnist"]
    make_files(second / "datasets" / "mnist", label=4)
    assert locate(download=False) == second / "datasets" / "mnist"
    make_files(first / "datasets" / "mnist", label=5)
    assert locate(download=False) == first / "datasets" / "mnist"  # earlier entries win
    monkeypatch.setenv("XDG_DATA_DIRS", "/nonexistent")  # how CI hides a system copy
    with pytest.raises(DatasetUnavailable, match="/nonexistent/datasets/mnist"):
        locate(download=False)


def test_a_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_dir() == tmp_path / "home" / ".cache" / "vae-course"


# --- checking and loading --------------------------------------------------------------------

def test_verify_reports_ok_corrupt_and_missing(fake):
    directory = fake["tmp"] / "check"
    make_files(directory, label=7)  # same bytes as the published files
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(b"corrupt")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    cut = (directory / "train-labels-idx1-ubyte.gz").read_bytes()[:-20]  # damaged gzip stream
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(cut)
    assert verify(root=directory) == {
        "train-images-idx3-ubyte.gz": True, "train-labels-idx1-ubyte.gz": False,
        "t10k-images-idx3-ubyte.gz": False, "t10k-labels-idx1-ubyte.gz": None}
    assert verify(root=fake["tmp"] / "empty") == {name: None for name in FILES}


def test_load_split_and_load_tensors(fake):
    root, arrays = fake["published"], fake["arrays"]
    images, labels = load_split(split="train", root=root)
    assert images.dtype == labels.dtype == np.uint8
    assert images.shape == (30, 28, 28) and labels.shape == (30,)
    x, y = load_tensors(split="train", root=root)
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    torch.testing.assert_close(x[:, 0] * 255, torch.from_numpy(arrays["train-images-idx3-ubyte.gz"]).float())
    x5, y5 = load_tensors(split="train", root=root, subset=5)
    assert torch.equal(x5, x[:5]) and torch.equal(y5, y[:5])
    assert len(load_tensors(split="train", root=root, subset=1000)[0]) == 30  # like a slice
    with pytest.raises(ValueError, match="subset must be a positive number"):
        load_tensors(split="train", root=root, subset=0)
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_split(split="validation", root=root)


def test_load_split_rejects_files_of_the_wrong_shape(fake):
    odd = fake["tmp"] / "odd"
    make_files(odd)
    write_idx(odd / "t10k-images-idx3-ubyte.gz", np.zeros((12, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: expected uint8 images of shape"):
        load_split(split="test", root=odd, download=False)
    write_idx(odd / "t10k-images-idx3-ubyte.gz", np.zeros((12, 28, 28), dtype=np.uint8))
    write_idx(odd / "t10k-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 12 uint8 labels"):
        load_split(split="test", root=odd, download=False)


# --- the real files ---------------------------------------------------------------------------

def test_real_mnist(mnist_dir):
    results = verify("mnist", root=mnist_dir)
    assert results["t10k-images-idx3-ubyte.gz"] and results["t10k-labels-idx1-ubyte.gz"]
    assert results["train-labels-idx1-ubyte.gz"]
    images, labels = load_split("mnist", "test", root=mnist_dir, download=False)
    assert images.shape == (10000, 28, 28) and labels[:5].tolist() == [7, 2, 1, 0, 4]
    x, y = load_tensors("mnist", "test", root=mnist_dir, download=False, subset=100)
    assert x.shape == (100, 1, 28, 28) and y[:5].tolist() == [7, 2, 1, 0, 4]


def test_real_fashion_mnist_from_the_system_folder(fashion_dir, monkeypatch):
    monkeypatch.delenv("XDG_DATA_DIRS")  # the default system folders
    assert locate("fashion-mnist", download=False) == fashion_dir  # env cleared, cache empty
    # Debian recompressed the files (no name in the gzip header): the .gz MD5s differ from
    # Zalando's, the decompressed data are identical, and verify() accepts them.
    assert verify("fashion-mnist") == {name: True for name in FILES}
    train_images, train_labels = load_split("fashion-mnist", "train", download=False)
    test_images, test_labels = load_split("fashion-mnist", "test", download=False)
    assert train_images.shape == (60000, 28, 28) and train_labels.shape == (60000,)
    assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)
    assert test_labels[:5].tolist() == [9, 2, 1, 1, 6]
    # Hidden the way CI hides it: then, offline, Fashion-MNIST is unavailable, at once
    monkeypatch.setenv("XDG_DATA_DIRS", "/nonexistent")
    monkeypatch.setenv("VAE_COURSE_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable, match="VAE_COURSE_OFFLINE=1 turns downloading off"):
        locate("fashion-mnist")


def test_a_folder_of_bare_mnist_files_is_not_taken_for_fashion_mnist(fashion_dir, mnist_dir, monkeypatch):
    """Both datasets use the same four file names: the test labels' content tells them apart,
    so $VAE_COURSE_DATA pointing at MNIST's files serves MNIST and Fashion-MNIST is looked
    for further on (here: the system folder)."""
    monkeypatch.delenv("XDG_DATA_DIRS")
    monkeypatch.setenv("VAE_COURSE_DATA", str(mnist_dir))
    assert locate("mnist", download=False) == mnist_dir
    assert locate("fashion-mnist", download=False) == fashion_dir
    assert load_split("fashion-mnist", "test", download=False)[1][:5].tolist() == [9, 2, 1, 1, 6]
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    monkeypatch.setenv("XDG_DATA_DIRS", "/nonexistent")
    with pytest.raises(DatasetUnavailable):  # Fashion-MNIST's files are not MNIST's either
        locate("mnist", download=False)


# --- Batches ----------------------------------------------------------------------------------

def grey_images(n: int = 50) -> torch.Tensor:
    return torch.linspace(0, 1, n * 4).reshape(n, 1, 2, 2)


def epoch_order(batches: Batches) -> list:
    return torch.cat([yb for _, yb in batches]).tolist()


def test_batches_cover_every_example_once_per_epoch():
    x, y = grey_images(50), torch.arange(50)
    batches = Batches(x, y, batch_size=8, seed=3)
    assert len(batches) == 7
    for _ in range(3):
        seen = []
        for xb, yb in batches:
            assert xb.shape[1:] == (1, 2, 2) and len(xb) == len(yb) <= 8
            torch.testing.assert_close(xb, x[yb])  # images stay paired with their labels
            seen += yb.tolist()
        assert sorted(seen) == list(range(50)) and seen != list(range(50))


def test_batches_order_is_a_pure_function_of_seed_and_epoch():
    x, y = grey_images(40), torch.arange(40)
    batches = Batches(x, y, batch_size=16, seed=1)
    first, second = epoch_order(batches), epoch_order(batches)  # each pass advances the epoch
    assert first != second and batches.epoch == 2
    batches.set_epoch(0)
    assert epoch_order(batches) == first
    resumed = Batches(x, y, batch_size=16, seed=1)
    resumed.set_epoch(1)
    assert epoch_order(resumed) == second
    assert epoch_order(Batches(x, y, batch_size=16, seed=2)) != first
    assert batches.order(1).tolist() == second
    assert epoch_order(Batches(x, y, batch_size=16, shuffle=False)) == list(range(40))


def test_batches_drop_last():
    x, y = grey_images(50), torch.arange(50)
    kept = Batches(x, y, batch_size=16, drop_last=False)
    dropped = Batches(x, y, batch_size=16, drop_last=True)
    assert len(kept) == 4 and [len(b) for b, _ in kept] == [16, 16, 16, 2]
    assert len(dropped) == 3 and [len(b) for b, _ in dropped] == [16, 16, 16]
    assert len(set(epoch_order(dropped))) == 48
    with pytest.raises(ValueError, match="leaves no batch"):
        Batches(x, y, batch_size=64, drop_last=True)


def test_batches_static_binarization():
    x = grey_images(50)
    batches = Batches(x, batch_size=10, binarize="static", shuffle=False)
    out = torch.cat([xb for xb, yb in batches])
    assert all(yb is None for _, yb in batches)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(out, (x > 0.5).float())
    assert torch.equal(torch.cat([xb for xb, _ in batches]), out)  # the same every epoch


def test_batches_dynamic_binarization():
    x = torch.full((400, 1, 5, 5), 0.3)
    x[:200] = 0.9
    batches = Batches(x, torch.arange(400), batch_size=100, binarize="dynamic", seed=5)
    first = {int(i): xb_i for xb, yb in batches for i, xb_i in zip(yb, xb)}
    second = {int(i): xb_i for xb, yb in batches for i, xb_i in zip(yb, xb)}
    high = torch.stack([first[i] for i in range(200)])
    low = torch.stack([first[i] for i in range(200, 400)])
    assert set(high.unique().tolist()) == {0.0, 1.0}
    assert abs(high.mean().item() - 0.9) < 0.03 and abs(low.mean().item() - 0.3) < 0.03
    assert any(not torch.equal(first[i], second[i]) for i in range(400))  # fresh noise each epoch
    batches.set_epoch(0)
    again = {int(i): xb_i for xb, yb in batches for i, xb_i in zip(yb, xb)}
    assert all(torch.equal(first[i], again[i]) for i in range(400))  # and reproducible


def test_batches_stay_on_the_data_device():
    x, y = grey_images(20), torch.arange(20)
    batches = Batches(x, y, batch_size=6, binarize="dynamic")
    assert batches.order(0).device == x.device
    for xb, yb in batches:
        assert xb.device == x.device and yb.device == x.device


def test_batches_validates_its_arguments():
    x = grey_images(10)
    with pytest.raises(ValueError, match="binarize must be one of none, static, dynamic"):
        Batches(x, binarize="otsu")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        Batches(x, batch_size=0)
    with pytest.raises(ValueError, match="one entry per example"):
        Batches(x, torch.arange(9))
    with pytest.raises(ValueError, match=r"needs float pixel values in \[0, 1\]"):
        Batches(x * 255, binarize="dynamic")
    with pytest.raises(ValueError, match="non-empty tensor"):
        Batches(x[:0])
    with pytest.raises(TypeError, match=r"Batches\(x, batch_size=128\)"):
        Batches(x, 128)  # the batch size passed where the labels go
