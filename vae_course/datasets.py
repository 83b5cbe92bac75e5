"""Which datasets exist and where their files are found: MNIST and Fashion-MNIST.

A dataset is read from one folder, the first of these that holds any of its files:

1. the ``root`` argument (the folder itself or ``root/<dataset>``);
2. ``$VAE_COURSE_DATA`` (the folder itself or ``$VAE_COURSE_DATA/<dataset>``);
3. the user cache, ``$XDG_CACHE_HOME/vae-course/<dataset>`` (``~/.cache/vae-course/<dataset>``);
4. system folders, as the XDG base-directory spec places shared data: ``<dir>/datasets/<dataset>``
   for each ``dir`` of ``$XDG_DATA_DIRS`` (default ``/usr/local/share:/usr/share``), so
   Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) is found;
5. else a download into the user cache (:mod:`vae_course.downloads`, which also checks the
   files' MD5 sums). ``VAE_COURSE_OFFLINE=1`` turns downloading off: a missing dataset then
   raises :class:`DatasetUnavailable` at once, without touching the network.

So loading, ``vae-course data info`` and ``data verify`` always speak of the same files; a folder
holding only some of them is an error that names it (the user cache excepted: what is missing
there is downloaded). Relative paths in ``$XDG_CACHE_HOME`` and ``$XDG_DATA_DIRS`` are ignored,
as the spec says. To hide a dataset (as CI does), point ``XDG_DATA_DIRS`` and ``XDG_CACHE_HOME``
at folders without it, leave ``VAE_COURSE_DATA`` unset and set ``VAE_COURSE_OFFLINE=1``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_DATASET = "mnist"
DATASET_ENV = "VAE_COURSE_DATASET"  # which dataset when none is named
DATA_ENV = "VAE_COURSE_DATA"  # a folder holding the files (or one subfolder per dataset)
OFFLINE_ENV = "VAE_COURSE_OFFLINE"  # "1": never download
DEFAULT_DATA_DIRS = "/usr/local/share:/usr/share"  # $XDG_DATA_DIRS when unset or empty
SPLITS = ("train", "test")


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
    # field), and a user may have gunzipped the files (read_idx reads them under either name).
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


class DataFolderError(ValueError):
    """A data folder setting or a download target is wrong; the message names it and the fix."""


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


# --- where a dataset is read from -------------------------------------------------------------

def _given_folder(label: str, value: Optional[PathLike]) -> Optional[Path]:
    """The root argument or ``$VAE_COURSE_DATA`` as a folder; a file, or a missing
    ``$VAE_COURSE_DATA``, is an error that says how to fix it (a missing root folder is simply
    searched in vain: it may be where a download is headed)."""
    if value is None or value == "":
        return None
    folder, variable = Path(value).expanduser(), label.startswith("$")
    fix = (f"point {label if variable else 'it'} at the folder holding the dataset's .gz files (or at "
           f"their parent folder, with one sub-folder per dataset)" + (", or unset it" if variable else ""))
    if folder.exists() and not folder.is_dir():
        raise DataFolderError(f"{label}{'=' if variable else ' '}{value} is a file, not a folder; {fix}")
    if variable and not folder.exists():
        raise DataFolderError(f"{label}={value}: no such folder; {fix} to use the user cache and "
                              f"the system folders")
    return folder


def _candidate_dirs(info: DatasetInfo, root: Optional[PathLike]) -> list[tuple[str, Path]]:
    """(where from, folder) in resolution order; a subfolder named after the dataset comes first."""
    candidates: list[tuple[str, Path]] = []
    for label, value in (("root argument", root), (f"${DATA_ENV}", os.environ.get(DATA_ENV))):
        base = _given_folder(label, value)
        if base is not None:
            candidates += [(label, base / info.name), (label, base)]
    candidates.append(("user cache", cache_dir() / info.name))
    candidates += [("system folder, $XDG_DATA_DIRS", d) for d in system_dirs(info.name)]
    return candidates


def _other_dataset(info: DatasetInfo, directory: Path) -> Optional[str]:
    """The other dataset whose files ``directory`` holds, or None.

    MNIST and Fashion-MNIST use the same file names, so a folder of bare MNIST files would
    pass for Fashion-MNIST too; the test labels (10 kB) tell them apart by their content.
    """
    from .downloads import content_md5  # imported here: downloads builds on this module

    labels_name = info.files["test-labels"]
    labels = _existing_file(directory, labels_name)
    if labels is None:
        return None
    digest = content_md5(labels)
    return next((other.name for other in DATASETS.values()
                 if other is not info and other.content_md5.get(labels_name) == digest), None)


def _found(info: DatasetInfo, root: Optional[PathLike]) -> Optional[tuple[str, Path]]:
    """(where from, folder) of the first candidate folder holding any of the dataset's files
    (and not another dataset's: see :func:`_other_dataset`)."""
    for label, directory in _candidate_dirs(info, root):
        if any(_existing_file(directory, f) for f in info.files.values()) and \
                _other_dataset(info, directory) is None:
            return label, directory
    return None


def dataset_folder(name: Optional[str] = None, root: Optional[PathLike] = None) -> Optional[Path]:
    """The folder the dataset is read from (all of its files), or None if no folder holds any."""
    info = DATASETS[dataset_name(name)]
    found = _found(info, root)
    return found[1] if found else None


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


def download_command(name: str, folder: Optional[Path] = None) -> str:
    """The command that completes ``folder`` (default: the user cache) with verified files."""
    root = "" if folder in (None, cache_dir() / name) else f" --root {folder}"
    return f"vae-course data download --dataset {name}{root}"


def _partial(info: DatasetInfo, label: str, folder: Path, missing: list[str]) -> DatasetUnavailable:
    present = [f for f in info.files.values() if _existing_file(folder, f)]
    return DatasetUnavailable(
        f"{info.name}: {folder} ({label}) holds {', '.join(present)} but is missing {', '.join(missing)}; "
        f"a dataset is read from one folder, the first that holds any of its files. Add the missing "
        f"files there (`{download_command(info.name, folder)}`), or move that folder's files away "
        f"so that the next place is searched")


def locate(name: Optional[str] = None, root: Optional[PathLike] = None, download: bool = True,
           files: Optional[Iterable[str]] = None) -> Path:
    """The folder holding the dataset's files (``files``: keys or names; default all four).

    Only existence is checked here, so loading stays fast; ``downloads.verify`` checks MD5 sums.
    """
    from . import downloads  # imported here: downloads builds on this module

    info = DATASETS[dataset_name(name)]
    needed = _file_names(info, files)
    found = _found(info, root)
    cache = cache_dir() / info.name
    if found is not None:
        label, folder = found
        missing = [f for f in needed if _existing_file(folder, f) is None]
        if not missing:
            return folder
        if folder != cache or not download:
            raise _partial(info, label, folder, missing)
        needed = missing
    elif not download:
        raise DatasetUnavailable(f"{info.name}: no folder holds {', '.join(needed)} "
                                 f"(downloading was not allowed)\n{_searched(info, root)}\n"
                                 f"{_remedies(info)}")
    try:
        return downloads.download(info.name, dest=cache, files=needed)
    except DatasetUnavailable as error:
        if found is not None:  # the message already names the cache, the folder searched
            raise
        raise DatasetUnavailable(f"{error}\n{_searched(info, root)}") from None


def _searched(info: DatasetInfo, root: Optional[PathLike]) -> str:
    return "Searched (no folder held any of the files):\n" + "\n".join(
        f"  - {directory} ({label})" for label, directory in _candidate_dirs(info, root))


def split_files(name: Optional[str] = None, split: str = "train", root: Optional[PathLike] = None,
                download: bool = True) -> tuple[Path, Path]:
    """The images and labels files of ``split`` (``"train"`` or ``"test"``), from one folder."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    info = DATASETS[dataset_name(name)]
    keys = (f"{split}-images", f"{split}-labels")
    folder = locate(info.name, root=root, download=download, files=keys)
    images, labels = (_existing_file(folder, info.files[key]) for key in keys)
    return images, labels
