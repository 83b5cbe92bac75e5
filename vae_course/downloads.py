"""Checking a dataset's files against the published MD5 sums, and downloading them from mirrors.

A download never leaves a file that looks complete but is not: each file is streamed into a
hidden ``.<name>.<random>.part`` file next to its target, checked, then renamed. The ``.part``
file is removed on any failure, Ctrl-C included; one left by a killed process (``kill -9``) is
removed by the next download into that folder (downloads into one folder take turns, under an
advisory lock, so a ``.part`` found there then is never another process's live one).

A mirror is given up, and the next one tried, when it cannot be reached, when it sends nothing
for :data:`DOWNLOAD_TIMEOUT` seconds, when a file takes longer than :data:`DOWNLOAD_DEADLINE`,
or when it sends slower than :data:`DOWNLOAD_MIN_RATE` on average (after a grace period).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Optional

from . import __version__
from .datasets import (DATASETS, OFFLINE_ENV, DataFolderError, DatasetInfo, DatasetUnavailable, PathLike,
                       _existing_file, _file_names, _remedies, cache_dir, dataset_folder, dataset_name,
                       offline)
from .idx import _guess_file_type, open_idx

DOWNLOAD_TIMEOUT = 10.0  # seconds without an answer before giving up on a mirror: offline fails fast
DOWNLOAD_DEADLINE = 1800.0  # seconds for one file from one mirror, however fast it trickles
DOWNLOAD_MIN_RATE = 16 * 1024  # bytes per second on average, checked once DOWNLOAD_GRACE has passed
DOWNLOAD_GRACE = 30.0  # (16 KiB/s brings Fashion-MNIST's largest file, 26 MB, within the deadline)


# --- checking ------------------------------------------------------------------------------

def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_md5(path: Path) -> Optional[str]:
    """MD5 of the bytes read_idx reads (decompressed if gzip, whatever the name); None if unreadable."""
    digest = hashlib.md5()
    try:
        with open_idx(path) as f:
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
    return expected is not None and content_md5(path) == expected


def _check(info: DatasetInfo, folder: Optional[Path], file_name: str) -> Optional[bool]:
    """True (the right data), False (corrupt) or None (missing) for one file of ``folder``."""
    path = _existing_file(folder, file_name) if folder is not None else None
    return None if path is None else _checksum_ok(info, file_name, path)


def verify(name: Optional[str] = None, root: Optional[PathLike] = None) -> dict[str, Optional[bool]]:
    """MD5 check of each file in the folder the dataset is read from (``datasets.dataset_folder``):
    file name -> True (ok), False (corrupt) or None (missing)."""
    info = DATASETS[dataset_name(name)]
    folder = dataset_folder(info.name, root)
    return {file_name: _check(info, folder, file_name) for file_name in info.files.values()}


# --- one file from one mirror ----------------------------------------------------------------

class _TooSlow(TimeoutError):
    """A mirror that answers, but too slowly to finish in reasonable time."""


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


def _content_length(response: BinaryIO) -> Optional[int]:
    """The announced size in bytes, or None when the server gives none or nonsense."""
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        length = int(value) if value is not None else None
    except ValueError:  # e.g. "abc": the length is simply unknown
        return None
    return length if length is not None and length >= 0 else None


def _copy(response: BinaryIO, out: BinaryIO, update: Callable[[int], object]) -> None:
    """Copy the response into ``out`` as bytes arrive, within the deadline and the minimum rate."""
    read = getattr(response, "read1", None) or response.read  # read1: what has arrived, no waiting
    start, received = time.monotonic(), 0
    for chunk in iter(lambda: read(1 << 16), b""):
        out.write(chunk)
        update(len(chunk))
        received += len(chunk)
        elapsed = time.monotonic() - start
        if elapsed > DOWNLOAD_DEADLINE:
            raise _TooSlow(f"too slow: not finished after {elapsed:.1f} s ({received} bytes), over "
                           f"the deadline of {DOWNLOAD_DEADLINE:g} s (DOWNLOAD_DEADLINE)")
        if elapsed > DOWNLOAD_GRACE and received < DOWNLOAD_MIN_RATE * elapsed:
            raise _TooSlow(f"too slow: {received} bytes in {elapsed:.1f} s, below the minimum of "
                           f"{DOWNLOAD_MIN_RATE:g} bytes/s (DOWNLOAD_MIN_RATE)")


def _new_part(target: Path) -> tuple[int, Path]:
    """A new hidden file next to ``target``, created exclusively (never an existing file or a
    link) with the permissions the umask allows, as for any new file (mkstemp's are 0600)."""
    part = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.open(part, flags, 0o666), part


def _fetch(url: str, target: Path, progress: bool) -> Path:
    """Stream ``url`` into a new ``.part`` file next to ``target``; return that file."""
    from tqdm.auto import tqdm

    fd, part = _new_part(target)
    try:
        with open(fd, "wb") as out, _open_url(url, DOWNLOAD_TIMEOUT) as response:
            with tqdm(total=_content_length(response), unit="B", unit_scale=True, unit_divisor=1024,
                      desc=target.name, disable=not progress) as bar:
                _copy(response, out, bar.update)
    except BaseException:  # Ctrl-C included: no .part is left behind
        part.unlink(missing_ok=True)
        raise
    return part


def _keep_if_right(info: DatasetInfo, file_name: str, part: Path, target: Path) -> Optional[str]:
    """Rename ``part`` to ``target`` if it holds the published data, else say what it held.
    ``part`` never outlives this call, not even a Ctrl-C during the checksum."""
    try:
        if _checksum_ok(info, file_name, part):
            os.replace(part, target)  # the file appears complete and checked, or not at all
            return None
        with open(part, "rb") as f:
            kind = _guess_file_type(f.read(64))
        return f"MD5 mismatch (expected {info.md5[file_name]})" + (f"; the mirror sent {kind}" if kind else "")
    finally:
        part.unlink(missing_ok=True)


def _download_file(info: DatasetInfo, file_name: str, target: Path, progress: bool,
                   skip: dict[str, str]) -> list[str]:
    """Try each mirror in turn until one serves ``file_name`` with the right MD5.

    Returns what went wrong with each mirror (an empty list on success).  Mirrors that cannot
    be reached or are too slow are added to ``skip`` (mirror -> why) and skipped for later files.
    """
    failures = []
    for mirror in info.mirrors:
        url = mirror.rstrip("/") + "/" + file_name
        if mirror in skip:
            failures.append(f"  - {url}: skipped, the mirror {skip[mirror]}")
            continue
        try:
            part = _fetch(url, target, progress)
        except (OSError, http.client.HTTPException) as error:  # URLError, HTTPError, timeouts
            failures.append(f"  - {url}: {error}")
            if isinstance(error, _TooSlow) or _server_unreachable(error):
                skip[mirror] = "was too slow" if isinstance(error, _TooSlow) else "could not be reached"
            continue
        problem = _keep_if_right(info, file_name, part, target)
        if problem is None:
            return []
        failures.append(f"  - {url}: {problem}")
    return failures


# --- a dataset's files -----------------------------------------------------------------------

@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[bool]:
    """Hold an advisory lock on ``folder`` (True), so downloads into it take turns; False where
    the system has no such locks (Windows)."""
    try:
        import fcntl
    except ImportError:
        yield False
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another download into {folder} to finish", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)  # releases the lock


def _remove_stale_parts(info: DatasetInfo, folder: Path) -> None:
    """Delete ``.part`` files a killed download left (call with the folder's lock held)."""
    for file_name in info.files.values():
        for part in folder.glob(f".{file_name}.*.part"):
            part.unlink(missing_ok=True)


def _not_a_file(dest: Path, names: list[str]) -> None:
    for file_name in names:
        target = dest / file_name
        if target.exists() and not target.is_file():
            raise DataFolderError(f"{target} is a folder (or another non-file) where the download must "
                                  f"write the file {file_name}: move it away, or download elsewhere "
                                  f"(the dest argument, `vae-course data download --root`)")


def download(name: Optional[str] = None, dest: Optional[PathLike] = None, progress: bool = True,
             files: Optional[Iterable[str]] = None) -> Path:
    """Download the dataset's files (default all four) into ``dest`` (default the user cache).

    Files already there with the right MD5 are kept; with ``$VAE_COURSE_OFFLINE`` set, any
    other file raises :class:`DatasetUnavailable` before the network is touched.
    """
    info = DATASETS[dataset_name(name)]
    dest = Path(dest).expanduser() if dest is not None else cache_dir() / info.name
    names = _file_names(info, files)
    _not_a_file(dest, names)
    todo = [f for f in names if not _check(info, dest, f)]
    if not todo:
        return dest
    if offline():
        raise DatasetUnavailable(f"{info.name}: not downloading {', '.join(todo)}: "
                                 f"${OFFLINE_ENV}={os.environ[OFFLINE_ENV]} turns downloading off\n"
                                 f"{_remedies(info)}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetUnavailable(f"{info.name}: cannot create the download folder {dest} ({error})\n"
                                 f"{_remedies(info)}") from error
    skip: dict[str, str] = {}
    failed, report = [], []
    with _folder_lock(dest) as locked:
        if locked:
            _remove_stale_parts(info, dest)
        for file_name in todo:
            if _check(info, dest, file_name):  # another process got it while we waited
                continue
            failures = _download_file(info, file_name, dest / file_name, progress, skip)
            if failures:
                failed.append(file_name)
                report += [f"{file_name}:"] + failures
    if failed:
        raise DatasetUnavailable(f"{info.name}: could not download {', '.join(failed)} from any mirror\n"
                                 + "\n".join(report) + "\n" + _remedies(info))
    return dest
