"""Loading a split as tensors, binarizing pixels, and mini-batches: what training reads.

Which files a split comes from is :mod:`vae_course.datasets`' business (and downloading them
:mod:`vae_course.downloads`'); here the IDX bytes become arrays and tensors.  Training does not
go through a per-item ``DataLoader``: a split is small (47 MB as bytes), so
:func:`load_tensors` puts it on the training device once and :class:`Batches` slices
mini-batches out of it by index.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zlib
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch

from .datasets import PathLike, cache_dir, split_files
from .idx import GZIP_MAGIC, read_idx
from .rng import bernoulli

BINARIZE_MODES = ("none", "static", "dynamic")


# --- loading -------------------------------------------------------------------------------

def load_split(name: Optional[str] = None, split: str = "train", root: Optional[PathLike] = None,
               download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (N, 28, 28)`` and labels ``uint8 (N,)`` of the ``"train"`` or ``"test"`` split
    (found, or downloaded, as ``datasets.locate`` says)."""
    images_path, labels_path = split_files(name, split, root=root, download=download)
    images, labels = read_idx_cached(images_path), read_idx_cached(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, 28, 28), "
                         f"found {images.dtype} {images.shape}; is this the right file?")
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(f"{labels_path}: expected {images.shape[0]} uint8 labels to match "
                         f"{images_path.name}, found {labels.dtype} {labels.shape}")
    return images, labels


def decompressed_cache_dir() -> Path:
    """Where :func:`read_idx_cached` keeps decompressed copies: ``<vae-course cache>/decompressed``."""
    return cache_dir() / "decompressed"


def read_idx_cached(path: PathLike) -> np.ndarray:
    """:func:`vae_course.idx.read_idx`, with a gzip-compressed file decompressed only once.

    Decompressing MNIST's training images takes longer than a short training run's other
    set-up, so the array is kept as ``.npy`` in :func:`decompressed_cache_dir`, beside a
    record of the source file (path, size, modification time) and a CRC-32 of the array.
    The copy is used only while all of them match; a changed, replaced or damaged copy is
    read again from the source (and rewritten).  Plain IDX files are read directly.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        if raw.read(2) != GZIP_MAGIC:
            return read_idx(path)
    stat = path.stat()
    source = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key = zlib.crc32(source["path"].encode())
    array_path = decompressed_cache_dir() / f"{path.name}.{key:08x}.npy"
    record_path = array_path.with_suffix(".json")
    array = _cached_array(array_path, record_path, source)
    if array is None:
        array = read_idx(path)
        _write_cache(array, array_path, record_path, source)
    return array


def _cached_array(array_path: Path, record_path: Path, source: dict) -> Optional[np.ndarray]:
    """The cached array if its record matches ``source`` and its checksum holds, else None."""
    try:
        record = json.loads(record_path.read_text())
        if record.get("source") != source:
            return None
        array = np.load(array_path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # no copy yet, or one that cannot be read: the source decides
    if [*array.shape] != record.get("shape") or str(array.dtype) != record.get("dtype") \
            or zlib.crc32(np.ascontiguousarray(array).data) != record.get("crc32"):
        return None
    return array


def _write_cache(array: np.ndarray, array_path: Path, record_path: Path, source: dict) -> None:
    """Write the copy and its record, each atomically; a cache that cannot be written is skipped."""
    record = {"source": source, "shape": [*array.shape], "dtype": str(array.dtype),
              "crc32": zlib.crc32(np.ascontiguousarray(array).data)}
    try:
        array_path.parent.mkdir(parents=True, exist_ok=True)
        for target, write in ((array_path, lambda f: np.save(f, array, allow_pickle=False)),
                              (record_path, lambda f: f.write(json.dumps(record).encode()))):
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    write(f)
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from others
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except OSError:
        pass  # a read-only or full cache only costs the decompression next time


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
