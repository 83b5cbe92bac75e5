"""Finding, verifying and batching the datasets: MNIST and Fashion-MNIST.

Where the files come from, in this order (the first folder holding the needed files wins):

1. the ``root`` argument (the folder itself or ``root/<dataset>``);
2. ``$VAE_COURSE_DATA`` (the folder itself or ``$VAE_COURSE_DATA/<dataset>``);
3. the user cache, ``$XDG_CACHE_HOME/vae-course/<dataset>`` (``~/.cache/vae-course/<dataset>``);
4. system folders, as the XDG base-directory spec places shared data: ``<dir>/datasets/<dataset>``
   for each ``dir`` of ``$XDG_DATA_DIRS`` (default ``/usr/local/share:/usr/share``), so
   Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``) is found;
5. a download into the user cache, checked against published MD5 sums, trying each mirror.
   ``VAE_COURSE_OFFLINE=1`` turns downloading off: a missing dataset then raises
   :class:`DatasetUnavailable` at once, without touching the network.

Relative paths in ``$XDG_CACHE_HOME`` and ``$XDG_DATA_DIRS`` are ignored, as the spec says.
To make a dataset unreachable (as CI does to test a machine with only one of them), point
``XDG_DATA_DIRS`` and ``XDG_CACHE_HOME`` at folders without it, leave ``VAE_COURSE_DATA``
unset and set ``VAE_COURSE_OFFLINE=1``.

Training does not go through a per-item ``DataLoader``: a split is small (47 MB as bytes),
so :func:`load_tensors` puts it on the training device once and :class:`Batches` slices
mini-batches out of it by index.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Optional, Union

import numpy as np
import torch

from . import __version__
from .idx import _guess_file_type, read_idx
from .rng import bernoulli

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_DATASET = "mnist"
DATASET_ENV = "VAE_COURSE_DATASET"  # which dataset when none is named
DATA_ENV = "VAE_COURSE_DATA"  # a folder holding the files (or one subfolder per dataset)
OFFLINE_ENV = "VAE_COURSE_OFFLINE"  # "1": never download
DEFAULT_DATA_DIRS = "/usr/local/share:/usr/share"  # $XDG_DATA_DIRS when unset or empty
DOWNLOAD_TIMEOUT = 10.0  # seconds without an answer before giving up on a mirror: offline fails fast

SPLITS = ("train", "test")
FILE_KEYS = ("train-images", "train-labels", "test-images", "test-labels")
BINARIZE_MODES = ("none", "static", "dynamic")


@dataclass(frozen=True)
class DatasetInfo:
    """Everything needed to find, download and check one dataset."""

    name: str
    files: dict[str, str]  # "train-images" ... "test-labels" -> file name
    md5: dict[str, str]  # file name -> MD5 of the published .gz file
    mirrors: list[str]  # base URLs, tried in order
    class_names: tuple[str, ...]
    # file name -> MD5 of the *decompressed* bytes.  A .gz file whose own MD5 differs but whose
    # content matches is accepted: repackagers recompress (Debian's files lack the gzip name
    # field), and a user may have gunzipped the files.
    content_md5: dict[str, str] = field(default_factory=dict)


_IDX_FILES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        files=dict(_IDX_FILES),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        content_md5={
            "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
        },
        # yann.lecun.com, the original home, refuses scripted downloads.
        mirrors=[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        class_names=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        files=dict(_IDX_FILES),
        # As published by Zalando.  Debian's dataset-fashion-mnist ships the same data
        # recompressed without the file name in the gzip header, so its .gz files hash to
        # cf8536b0..., 10bea18f..., f78720b4..., 0d30e22e... and are accepted by content_md5.
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        content_md5={
            "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        mirrors=[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ],
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


class DatasetUnavailable(RuntimeError):
    """No copy of a dataset could be found or downloaded; the message lists the remedies."""


# --- which dataset, which files -------------------------------------------------------------

def dataset_name(name: Optional[str] = None) -> str:
    """The dataset to use: the argument, else ``$VAE_COURSE_DATASET``, else ``"mnist"``."""
    source = "argument"
    if not name:
        name, source = os.environ.get(DATASET_ENV) or DEFAULT_DATASET, f"${DATASET_ENV}"
    normalized = name.strip().lower().replace("_", "-")
    if normalized not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (from the {source}); "
                         f"known datasets: {', '.join(DATASETS)}")
    return normalized


def cache_dir() -> Path:
    """The per-user download folder: ``$XDG_CACHE_HOME/vae-course`` or ``~/.cache/vae-course``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the spec's default
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vae-course"


def system_dirs(name: Optional[str] = None) -> list[Path]:
    """The system folders for a dataset: ``<dir>/datasets/<dataset>`` for each ``dir`` of
    ``$XDG_DATA_DIRS`` (colon-separated; default ``/usr/local/share:/usr/share``)."""
    info = DATASETS[dataset_name(name)]
    dirs = os.environ.get("XDG_DATA_DIRS") or DEFAULT_DATA_DIRS
    return [Path(d) / "datasets" / info.name for d in dirs.split(":") if os.path.isabs(d)]


def offline() -> bool:
    """True when ``$VAE_COURSE_OFFLINE`` is set (and not ``0``): no download is ever attempted."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def _file_names(info: DatasetInfo, files: Optional[Iterable[str]]) -> list[str]:
    """File names for ``files`` given as keys ("test-images") or file names; None = all four."""
    if files is None:
        return list(info.files.values())
    if isinstance(files, str):
        files = [files]
    names = []
    for item in files:
        if item in info.files:
            names.append(info.files[item])
        elif item in info.files.values():
            names.append(item)
        else:
            raise ValueError(f"unknown file {item!r} for {info.name}; "
                             f"use one of {', '.join(info.files)} or {', '.join(info.files.values())}")
    return names


def _existing_file(directory: Path, file_name: str) -> Optional[Path]:
    """``directory/file_name``, or its gunzipped twin without ``.gz``, if either exists."""
    for candidate in (directory / file_name, directory / file_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _candidate_dirs(info: DatasetInfo, root: Optional[PathLike]) -> list[tuple[str, Path]]:
    """(where from, folder) in resolution order; a subfolder named after the dataset comes first."""
    candidates: list[tuple[str, Path]] = []
    for label, base in (("root argument", root), (f"${DATA_ENV}", os.environ.get(DATA_ENV) or None)):
        if base is not None:
            base = Path(base).expanduser()
            candidates += [(label, base / info.name), (label, base)]
    candidates.append(("user cache", cache_dir() / info.name))
    candidates += [("system folder, $XDG_DATA_DIRS", d) for d in system_dirs(info.name)]
    return candidates


def _remedies(info: DatasetInfo) -> str:
    lines = [
        "Remedies:",
        f"  - point ${DATA_ENV} (or the root argument) at a folder holding the files "
        f"{', '.join(info.files.values())}",
        f"  - when online, run `vae-course data download --dataset {info.name}` "
        f"(files go to {cache_dir() / info.name})",
        f"  - or fetch them by hand from {info.mirrors[0]} into {cache_dir() / info.name}",
        "  - on Debian/Ubuntu, `sudo apt-get install dataset-fashion-mnist` installs Fashion-MNIST "
        "into /usr/share/datasets/fashion-mnist (a system folder, searched through $XDG_DATA_DIRS)"
        + ("" if info.name == "fashion-mnist" else
           f"; then use it with {DATASET_ENV}=fashion-mnist (a drop-in replacement for MNIST)"),
        (f"  - or unset ${OFFLINE_ENV} (set here: downloading is off) and run again online: "
         "missing files are downloaded automatically" if offline() else
         "  - or connect to the internet and run again: missing files are downloaded automatically"),
    ]
    return "\n".join(lines)


# --- finding -------------------------------------------------------------------------------

def locate(name: Optional[str] = None, root: Optional[PathLike] = None, download: bool = True,
           files: Optional[Iterable[str]] = None) -> Path:
    """The folder holding the dataset's files (``files``: keys or names; default all four).

    Only existence is checked here, so loading stays fast; :func:`verify` checks the MD5 sums.
    """
    info = DATASETS[dataset_name(name)]
    needed = _file_names(info, files)
    searched = []
    for label, directory in _candidate_dirs(info, root):
        missing = [f for f in needed if _existing_file(directory, f) is None]
        if not missing:
            return directory
        searched.append(f"  - {directory} ({label}): missing {', '.join(missing)}")
    where = "Searched:\n" + "\n".join(searched)
    if not download:
        raise DatasetUnavailable(f"{info.name}: no folder holds {', '.join(needed)} "
                                 f"(downloading was not allowed)\n{where}\n{_remedies(info)}")
    try:
        return _download_into_cache(info, needed)
    except DatasetUnavailable as error:
        raise DatasetUnavailable(f"{error}\n{where}") from None


# --- checking ------------------------------------------------------------------------------

def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_md5(path: Path) -> Optional[str]:
    """MD5 of the decompressed bytes of a .gz file (of the bytes of a plain one); None if unreadable."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return None
    return digest.hexdigest()


def _checksum_ok(info: DatasetInfo, file_name: str, path: Path) -> bool:
    """True if ``path`` is the published file, or holds the published data recompressed/gunzipped."""
    if _md5(path) == info.md5[file_name]:
        return True
    expected = info.content_md5.get(file_name)
    return expected is not None and _content_md5(path) == expected


def verify(name: Optional[str] = None, root: Optional[PathLike] = None) -> dict[str, Optional[bool]]:
    """MD5 check of each file: file name -> True (ok), False (corrupt) or None (missing)."""
    info = DATASETS[dataset_name(name)]
    if root is None:
        candidates = [directory for _, directory in _candidate_dirs(info, None)]
    else:
        candidates = [Path(root).expanduser() / info.name, Path(root).expanduser()]
    # the first candidate folder holding any of the files is the one checked
    directory = next((d for d in candidates
                      if any(_existing_file(d, f) for f in info.files.values())), None)
    results: dict[str, Optional[bool]] = {}
    for file_name in info.files.values():
        path = _existing_file(directory, file_name) if directory is not None else None
        results[file_name] = None if path is None else _checksum_ok(info, file_name, path)
    return results


# --- downloading ---------------------------------------------------------------------------

def _open_url(url: str, timeout: float) -> BinaryIO:
    """Open ``url`` for reading (http, https, file). Tests replace this to stay offline."""
    request = urllib.request.Request(url, headers={"User-Agent": f"vae-course/{__version__}"})
    return urllib.request.urlopen(request, timeout=timeout)


def _server_unreachable(error: Exception) -> bool:
    """True for network failures (no DNS, refused, timed out), False for e.g. HTTP 404."""
    if isinstance(error, urllib.error.HTTPError):
        return False
    reason = getattr(error, "reason", error)
    return isinstance(reason, OSError) and not isinstance(reason, FileNotFoundError)


def _fetch(url: str, target: Path, progress: bool) -> Path:
    """Stream ``url`` into a temporary file next to ``target``; return the temporary path."""
    from tqdm.auto import tqdm

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with open(fd, "wb") as out, _open_url(url, DOWNLOAD_TIMEOUT) as response:
            headers = getattr(response, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            with tqdm(total=int(length) if length else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return Path(tmp_name)


def _download_file(info: DatasetInfo, file_name: str, target: Path, progress: bool,
                   unreachable: set) -> list[str]:
    """Try each mirror in turn until one serves ``file_name`` with the right MD5.

    Returns what went wrong with each mirror (an empty list on success).  Mirrors that
    cannot be reached at all are added to ``unreachable`` and skipped for later files.
    """
    failures = []
    for mirror in info.mirrors:
        url = mirror.rstrip("/") + "/" + file_name
        if mirror in unreachable:
            failures.append(f"  - {url}: skipped, the mirror could not be reached")
            continue
        try:
            tmp = _fetch(url, target, progress)
        except (OSError, http.client.HTTPException) as error:  # URLError, HTTPError, timeouts
            failures.append(f"  - {url}: {error}")
            if _server_unreachable(error):
                unreachable.add(mirror)
            continue
        if _checksum_ok(info, file_name, tmp):
            os.replace(tmp, target)  # the file appears complete and checked, or not at all
            return []
        with open(tmp, "rb") as f:
            kind = _guess_file_type(f.read(64))
        tmp.unlink()
        failures.append(f"  - {url}: MD5 mismatch (expected {info.md5[file_name]})"
                        + (f"; the mirror sent {kind}" if kind else ""))
    return failures


def download(name: Optional[str] = None, dest: Optional[PathLike] = None, progress: bool = True,
             files: Optional[Iterable[str]] = None) -> Path:
    """Download the dataset's files (default all four) into ``dest`` (default the user cache).

    Files already there with the right MD5 are kept; with ``$VAE_COURSE_OFFLINE`` set, any
    other file raises :class:`DatasetUnavailable` before the network is touched.  Each file
    is written to a temporary name, checked, then renamed, so a failed download never leaves
    a file that looks complete.
    """
    info = DATASETS[dataset_name(name)]
    dest = Path(dest).expanduser() if dest is not None else cache_dir() / info.name
    todo = [f for f in _file_names(info, files)
            if not ((dest / f).is_file() and _checksum_ok(info, f, dest / f))]
    if todo and offline():
        raise DatasetUnavailable(f"{info.name}: not downloading {', '.join(todo)}: "
                                 f"${OFFLINE_ENV}={os.environ[OFFLINE_ENV]} turns downloading off\n"
                                 f"{_remedies(info)}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetUnavailable(f"{info.name}: cannot create the download folder {dest} ({error})\n"
                                 f"{_remedies(info)}") from error
    unreachable: set[str] = set()
    failed, report = [], []
    for file_name in todo:
        target = dest / file_name
        failures = _download_file(info, file_name, target, progress, unreachable)
        if failures:
            failed.append(file_name)
            report += [f"{file_name}:"] + failures
    if failed:
        raise DatasetUnavailable(f"{info.name}: could not download {', '.join(failed)} from any mirror\n"
                                 + "\n".join(report) + "\n" + _remedies(info))
    return dest


def _download_into_cache(info: DatasetInfo, file_names: list[str]) -> Path:
    # locate()'s `download` argument hides the function of that name there, hence this helper.
    return download(info.name, dest=cache_dir() / info.name, files=file_names)


# --- loading -------------------------------------------------------------------------------

def load_split(name: Optional[str] = None, split: str = "train", root: Optional[PathLike] = None,
               download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (N, 28, 28)`` and labels ``uint8 (N,)`` of the ``"train"`` or ``"test"`` split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    info = DATASETS[dataset_name(name)]
    keys = (f"{split}-images", f"{split}-labels")
    directory = locate(info.name, root=root, download=download, files=keys)
    images_path = _existing_file(directory, info.files[keys[0]])
    labels_path = _existing_file(directory, info.files[keys[1]])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, 28, 28), "
                         f"found {images.dtype} {images.shape}; is this the right file?")
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(f"{labels_path}: expected {images.shape[0]} uint8 labels to match "
                         f"{images_path.name}, found {labels.dtype} {labels.shape}")
    return images, labels


def load_tensors(name: Optional[str] = None, split: str = "train", device: Union[str, torch.device] = "cpu",
                 subset: Optional[int] = None, root: Optional[PathLike] = None,
                 download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split on ``device``: images float32 ``(N, 1, 28, 28)`` in [0, 1], labels int64 ``(N,)``.

    ``subset=N`` keeps the first N examples (all of them if the split is smaller, like a
    slice, so one ``subset`` serves both the 60000-image and the 10000-image split).
    """
    if subset is not None and subset < 1:
        raise ValueError(f"subset must be a positive number of examples, got {subset}")
    images, labels = load_split(name, split, root=root, download=download)
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    # Move the compact uint8 bytes, then convert on the device: 4x less to transfer.
    x = torch.from_numpy(images).to(device).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    return x, y


# --- mini-batches --------------------------------------------------------------------------

def _derived_seed(*numbers: int) -> int:
    """A well-mixed 63-bit seed that depends only on ``numbers`` (e.g. seed, epoch, stream)."""
    state = np.random.SeedSequence([int(n) for n in numbers]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def binarized(x: torch.Tensor, mode: str, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Pixels as a recipe trains on them: ``"none"`` keeps grey levels, ``"static"`` thresholds
    at 0.5 (the TensorFlow tutorial), ``"dynamic"`` draws ``bernoulli(x)`` (see ``rng.bernoulli``)."""
    if mode == "static":
        return (x > 0.5).to(x.dtype)
    if mode == "dynamic":
        return bernoulli(x, generator)
    return x


class Batches:
    """Mini-batches sliced by index out of tensors already on the training device.

    Each pass over the data uses epoch ``self.epoch`` and then advances it, so a plain
    ``for epoch ...: for xb, yb in batches:`` reshuffles every epoch.  The order (and the
    dynamic binarization noise) is a pure function of ``(seed, epoch)``: call
    ``set_epoch(e)`` before a pass to reproduce epoch ``e`` exactly, e.g. when resuming.

    ``binarize``: ``"none"`` keeps grey levels; ``"static"`` thresholds once at 0.5 (the
    TensorFlow tutorial); ``"dynamic"`` draws fresh ``bernoulli(x)`` pixels for every batch.
    ``drop_last=True`` skips the final partial batch, as MATLAB's minibatchqueue does.
    """

    def __init__(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, *, batch_size: int = 128,
                 shuffle: bool = True, drop_last: bool = False, binarize: str = "none",
                 seed: int = 0) -> None:
        if y is not None and not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a tensor of labels (or None), got {type(y).__name__} {y!r}; "
                            f"pass the batch size by name: Batches(x, batch_size={y!r})")
        if not isinstance(x, torch.Tensor) or x.ndim == 0 or len(x) == 0:
            raise ValueError("x must be a non-empty tensor with examples along the first dimension")
        if y is not None and (len(y) != len(x) or y.device != x.device):
            raise ValueError(f"y must have one entry per example of x on the same device: "
                             f"x has {len(x)} on {x.device}, y has {len(y)} on {y.device}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if binarize not in BINARIZE_MODES:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE_MODES)}, got {binarize!r}")
        if drop_last and len(x) < batch_size:
            raise ValueError(f"drop_last=True with {len(x)} examples and batch_size={batch_size} "
                             f"leaves no batch at all; use a smaller batch_size or drop_last=False")
        if binarize != "none" and (not x.is_floating_point() or x.min() < 0 or x.max() > 1):
            raise ValueError(f"binarize={binarize!r} needs float pixel values in [0, 1] "
                             f"(as load_tensors returns)")
        if binarize == "static":
            x = binarized(x, "static")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.binarize, self.seed = binarize, seed
        self.epoch = 0

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.x) // self.batch_size
        return math.ceil(len(self.x) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use epoch ``epoch``'s order and noise."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> torch.Tensor:
        """The example indices of epoch ``epoch`` (on the data's device)."""
        if not self.shuffle:
            return torch.arange(len(self.x), device=self.x.device)
        # Shuffle on the CPU so the order is the same on every device, then move it once.
        generator = torch.Generator().manual_seed(_derived_seed(self.seed, epoch, 0))
        return torch.randperm(len(self.x), generator=generator).to(self.x.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        epoch = self.epoch
        self.epoch += 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        indices = self.order(epoch) if self.shuffle else None
        noise = None
        if self.binarize == "dynamic":  # a CPU generator: the same pixels on every device
            noise = torch.Generator().manual_seed(_derived_seed(self.seed, epoch, 1))
        for b in range(len(self)):
            rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
            if indices is not None:
                rows = indices[rows]  # gather: an index tensor on the data's device
            xb = self.x[rows]
            yb = self.y[rows] if self.y is not None else None
            if noise is not None:
                xb = binarized(xb, "dynamic", noise)
            yield xb, yb
