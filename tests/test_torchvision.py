"""Cross-checks against torchvision: the course's reader and grids give what it gives.

torchvision is optional and the course never imports it. When is its absence an error?

* In the main environment (``make test``, CI's ``.ci/run``) torchvision is deliberately
  absent: the package must work without it, and on this project's machines PyPI's
  torchvision does not even import beside the CPU build of torch 2.13.0. There this module
  is skipped, even under ``VAE_COURSE_STRICT=1``: nothing the environment promises is missing.
* ``tools/ci_torchvision.sh`` builds a second environment *with* a working torchvision and
  sets ``VAE_COURSE_REQUIRE_TORCHVISION=1`` (and ``VAE_COURSE_STRICT=1``). There torchvision
  is a promised component like any other, so ``require`` turns a failed import into a
  failure instead of a skip that would hide it.
"""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require
from vae_course import data, plots
from vae_course.datasets import SPLITS

REQUIRED = os.environ.get("VAE_COURSE_REQUIRE_TORCHVISION") == "1"
try:
    import torchvision  # noqa: F401 (the import itself is what may fail)
    from torchvision import datasets, transforms, utils
    IMPORT_ERROR = ""
except Exception as error:  # ImportError, or e.g. RuntimeError from a build for another torch
    IMPORT_ERROR = f"{type(error).__name__}: {error}"

if IMPORT_ERROR and not REQUIRED:
    pytest.skip(f"torchvision does not import ({IMPORT_ERROR}); this environment does not "
                "promise it (VAE_COURSE_REQUIRE_TORCHVISION is not 1)", allow_module_level=True)


@pytest.fixture(autouse=True)
def working_torchvision():
    require(not IMPORT_ERROR, f"a working torchvision ({IMPORT_ERROR})")


def torchvision_root(source: Path, dataset_class: type, tmp_path: Path) -> Path:
    """A root folder laid out as torchvision expects it, for ``download=False``:
    the four decompressed IDX files in ``root/<class name>/raw/``."""
    raw = tmp_path / dataset_class.__name__ / "raw"
    raw.mkdir(parents=True)
    for gz in source.glob("*-ubyte.gz"):
        with gzip.open(gz, "rb") as packed, open(raw / gz.stem, "wb") as plain:
            shutil.copyfileobj(packed, plain)
    return tmp_path


def assert_same_as_torchvision(name: str, source: Path, dataset_class: type, tmp_path: Path):
    root = torchvision_root(source, dataset_class, tmp_path)
    for split in SPLITS:
        theirs = dataset_class(root, train=split == "train", download=False)
        images, labels = data.load_split(name, split, root=source, download=False)
        assert theirs.data.dtype == torch.uint8 and theirs.targets.dtype == torch.int64
        assert torch.equal(theirs.data, torch.from_numpy(images)), split
        assert torch.equal(theirs.targets, torch.from_numpy(labels).long()), split


def test_mnist_reader_equals_torchvision(mnist_dir, tmp_path):
    assert_same_as_torchvision("mnist", mnist_dir, datasets.MNIST, tmp_path)


def test_fashion_mnist_reader_equals_torchvision(fashion_dir, tmp_path):
    assert_same_as_torchvision("fashion-mnist", fashion_dir, datasets.FashionMNIST, tmp_path)


def test_load_tensors_equals_to_tensor_items(fashion_dir, tmp_path):
    # ToTensor() turns one uint8 PIL image into float32 (1, 28, 28) / 255; load_tensors does
    # the same to the whole split at once. One correctly rounded IEEE division of the same
    # numbers on both sides, so bit for bit on any CPU (tests/README.md), labels included.
    root = torchvision_root(fashion_dir, datasets.FashionMNIST, tmp_path)
    theirs = datasets.FashionMNIST(root, train=False, download=False,
                                   transform=transforms.ToTensor())
    x, y = data.load_tensors("fashion-mnist", "test", subset=500, root=fashion_dir,
                             download=False)
    items = [theirs[i] for i in range(500)]
    assert torch.equal(torch.stack([image for image, _ in items]), x)
    assert torch.equal(torch.tensor([label for _, label in items]), y)


def uint8_like_images(n: int) -> torch.Tensor:
    """Images (n, 1, 28, 28) whose pixels are k/255, as the datasets' are."""
    generator = torch.Generator().manual_seed(n)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=generator).float() / 255


@pytest.mark.parametrize("n, ncols, padding, pad_value",
                         [(64, 8, 2, 0.0), (10, 5, 1, 1.0), (7, 3, 0, 0.5), (16, 16, 3, 1.0)])
def test_tile_equals_make_grid(n, ncols, padding, pad_value):
    # Same layout rule: image k at (padding + (k // ncols)(H + padding), ...). make_grid
    # returns 3 identical channels. (It differs for n < ncols, where it narrows the grid,
    # and n == 1, where it returns the image unpadded.)
    images = uint8_like_images(n)
    grid = utils.make_grid(images, nrow=ncols, padding=padding, pad_value=pad_value)
    ours = plots.tile(images, ncols=ncols, padding=padding, pad_value=pad_value)
    assert grid.shape == (3, *ours.shape)
    assert torch.equal(grid[0], grid[1]) and torch.equal(grid[0], grid[2])
    assert np.array_equal(grid[0].numpy(), ours)


def test_save_image_grid_equals_save_image(tmp_path):
    # save_image writes make_grid's grid as an RGB PNG (defaults: 8 columns, 2 black pixels
    # of padding); save_image_grid writes a grayscale PNG (ceil(sqrt(n)) columns, 1 white
    # pixel, upscaled). With the same settings and scale=1 the pixels are the same.
    images = uint8_like_images(20)
    utils.save_image(images, tmp_path / "theirs.png", nrow=5, padding=1, pad_value=1.0)
    plots.save_image_grid(images, tmp_path / "ours.png", ncols=5, scale=1)
    with Image.open(tmp_path / "theirs.png") as theirs, Image.open(tmp_path / "ours.png") as ours:
        assert (theirs.mode, ours.mode) == ("RGB", "L")
        rgb, gray = np.asarray(theirs), np.asarray(ours)
    assert rgb.shape == (*gray.shape, 3) == (4 * 29 + 1, 5 * 29 + 1, 3)
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], gray)
    assert np.array_equal(gray[1:29, 1:29], (images[0, 0] * 255).round().byte().numpy())
