"""Reading and writing IDX files, the format MNIST and Fashion-MNIST come in (chapter 2).

An IDX file is a few header bytes followed by the numbers themselves::

    offset   bytes  meaning
    0        2      two zero bytes
    2        1      type code of the items: 0x08 unsigned byte ... 0x0E double
    3        1      number of dimensions, d
    4        4*d    size of each dimension, big-endian 32-bit integers
    4 + 4*d  ...    the items, big-endian, last dimension changing fastest

So MNIST's test images start with ``00 00 08 03`` (unsigned bytes, 3 dimensions) and the
sizes 10000, 28, 28; then come 10000 * 28 * 28 bytes of pixels, and nothing else. The files
are published gzip-compressed; :func:`read_idx` recognises compression by the file's first two
bytes (``1f 8b``), not by its name, so a file gunzipped by hand reads the same under either name.

We read the header with :mod:`struct`, check that the file holds exactly the number of
bytes the header promises, and only then hand the bytes to numpy.  The check comes first
so that a damaged or hostile header (one that claims billions of items) fails at once
instead of trying to allocate memory for data that is not there.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO, NamedTuple, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

# type code -> (name used in the IDX description, numpy dtype as stored in the file).
# The ">" means big-endian: the most significant byte comes first in the file.
IDX_DTYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("unsigned byte", np.dtype("u1")),
    0x09: ("signed byte", np.dtype("i1")),
    0x0B: ("short (2 bytes)", np.dtype(">i2")),
    0x0C: ("int (4 bytes)", np.dtype(">i4")),
    0x0D: ("float (4 bytes)", np.dtype(">f4")),
    0x0E: ("double (8 bytes)", np.dtype(">f8")),
}

_CHUNK = 1 << 20  # read payloads 1 MiB at a time, never the size a header merely claims
GZIP_MAGIC = b"\x1f\x8b"


def _numpy_max_dims() -> int:
    """How many dimensions a numpy array may have here: 64 since numpy 2.0, 32 before."""
    for ndim in (64, 32):
        try:
            np.empty((1,) * ndim)
            return ndim
        except ValueError:
            continue
    return 32


MAX_DIMS = _numpy_max_dims()


class IDXError(ValueError):
    """A file is not a valid IDX file; the message names the file, the byte offset and the fix."""

    def __init__(self, source: str, offset: int, problem: str, fix: str = "") -> None:
        self.source = source
        self.offset = offset
        message = f"{source}: at byte offset {offset}: {problem}"
        if fix:
            message += f". {fix}"
        super().__init__(message)


class IDXHeader(NamedTuple):
    dtype_code: int
    dtype: np.dtype
    shape: tuple[int, ...]
    header_size: int


def _guess_file_type(head: bytes) -> Optional[str]:
    """Name what a file that is not IDX probably is, judging by its first bytes."""
    start = head.lstrip()[:64].lower()
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file (load it with numpy.load)"
    if start.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the data (fetch it with `git lfs pull`)"
    if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<")):
        return "an HTML/XML page, probably an error page saved by a failed download"
    if start.startswith((b"{", b"[")):
        return "JSON text, probably an error message saved by a failed download"
    return None


def _not_idx_fix(head: bytes) -> str:
    guess = _guess_file_type(head)
    if guess:
        return f"This looks like {guess}, not an IDX file: delete it and download it again"
    return "Is this really an IDX file? If it came from a download, delete it and download it again"


def parse_idx_header(data: bytes, source: str = "<bytes>") -> IDXHeader:
    """Decode the magic number and dimension sizes at the start of ``data``.

    ``data`` may hold just the header or the whole file; only the header is read.
    """
    if len(data) < 4:
        raise IDXError(source, len(data),
                       f"truncated header: expected a 4-byte magic number, "
                       f"the file has only {len(data)} bytes",
                       "The file is empty or cut short: download it again")
    zero1, zero2, dtype_code, ndim = struct.unpack(">BBBB", data[:4])
    if (zero1, zero2) != (0, 0):
        raise IDXError(source, 0,
                       f"wrong magic number: expected two zero bytes, found {data[:2].hex(' ')}",
                       _not_idx_fix(data))
    if dtype_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X} {name}" for code, (name, _) in IDX_DTYPES.items())
        raise IDXError(source, 2,
                       f"unknown type code 0x{dtype_code:02X}: expected one of {known}",
                       "The file is damaged or is not an IDX file")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(source, len(data),
                       f"truncated header: {ndim} dimensions need {header_size} header bytes, "
                       f"the file has only {len(data)}",
                       "The file is cut short: download it again")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    _, dtype = IDX_DTYPES[dtype_code]
    return IDXHeader(dtype_code, dtype, tuple(shape), header_size)


def open_idx(path: PathLike) -> BinaryIO:
    """Open a file for reading its IDX bytes: decompressed on the fly if it is gzip-compressed
    (its first two bytes are ``1f 8b``), as it is otherwise, whatever its name."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # type: ignore[return-value]


def _check_payload_size(header: IDXHeader, available: int, source: str) -> None:
    """Raise unless exactly the number of payload bytes the header declares is available."""
    expected = math.prod(header.shape) * header.dtype.itemsize  # a Python int: no overflow
    item_name = IDX_DTYPES[header.dtype_code][0]
    declared = f"the header declares shape {header.shape} of {item_name} = {expected} bytes"
    if available < expected:
        raise IDXError(source, header.header_size + available,
                       f"truncated payload: {declared}, but only {available} bytes follow it",
                       "The file is cut short (an interrupted download?) or its header is wrong: "
                       "download it again")
    if available > expected:
        raise IDXError(source, header.header_size + expected,
                       f"trailing bytes: {declared}, but {available - expected} extra bytes follow them",
                       "The header does not match the data: the file is damaged or not what it seems")


def _read_idx_stream(stream: BinaryIO, source: str, file_size: Optional[int]) -> np.ndarray:
    # 1. The header: 4 bytes of magic number, then 4 bytes per dimension.
    magic = stream.read(4)
    dims = stream.read(4 * magic[3]) if len(magic) == 4 else b""
    header = parse_idx_header(magic + dims, source)
    if len(header.shape) > MAX_DIMS:  # a valid IDX header, but numpy cannot hold the array
        raise IDXError(source, 3, f"{len(header.shape)} dimensions: a numpy array can have at most "
                       f"{MAX_DIMS}", "The file is damaged or is not an IDX file (MNIST's images have 3 "
                       "dimensions, its labels 1)")
    expected = math.prod(header.shape) * header.dtype.itemsize

    # 2. A plain file's size is known: compare it with the declared size before reading on.
    if file_size is not None:
        _check_payload_size(header, file_size - header.header_size, source)

    # 3. Read at most the declared number of bytes, a chunk at a time, so memory grows with
    #    what the file really holds (a .gz file's length is only known once it is read),
    #    never with what the header claims.
    payload = bytearray()
    while len(payload) < expected:
        chunk = stream.read(min(_CHUNK, expected - len(payload)))
        if not chunk:
            _check_payload_size(header, len(payload), source)  # raises: truncated payload
        payload += chunk

    # 4. Nothing may follow the payload.
    trailing = 0
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        trailing += len(chunk)
    _check_payload_size(header, expected + trailing, source)

    # 5. Interpret the bytes, then convert to this machine's byte order for fast arithmetic.
    array = np.frombuffer(payload, dtype=header.dtype).reshape(header.shape)
    return array.astype(header.dtype.newbyteorder("="), copy=False)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into a numpy array in native byte order."""
    path = Path(path)
    try:
        with open_idx(path) as stream:
            plain = not isinstance(stream, gzip.GzipFile)
            file_size = os.fstat(stream.fileno()).st_size if plain else None
            return _read_idx_stream(stream, str(path), file_size)
    except (gzip.BadGzipFile, zlib.error, EOFError) as error:
        offset, good = _gzip_break(path)
        raise IDXError(str(path), offset, f"the gzip data is damaged or cut short here, after {good} "
                       f"decompressed bytes ({error}; the offset counts compressed bytes)",
                       "Delete the file and download it again") from error


def _gzip_break(path: Path) -> tuple[int, int]:
    """Where a damaged gzip file stops making sense: (offset in the compressed file, number of
    bytes decompressed before it). Only run after gzip failed, so speed does not matter."""
    inflate, offset, good, pending = zlib.decompressobj(wbits=31), 0, 0, b""
    with open(path, "rb") as raw:
        while True:
            chunk, pending = pending or raw.read(1 << 12), b""
            if not chunk:
                return offset, good  # cut short: the data end before the gzip trailer
            saved = inflate.copy()
            try:
                good += _inflated_size(inflate, chunk)
            except zlib.error:  # the damage is in this chunk: find the byte
                for i in range(len(chunk)):
                    try:
                        good += _inflated_size(saved, chunk[i:i + 1])
                    except zlib.error:
                        return offset + i, good
                return offset + len(chunk), good
            if inflate.eof:  # one gzip member ended; another may follow
                pending, inflate = inflate.unused_data, zlib.decompressobj(wbits=31)
            offset += len(chunk) - len(pending)


def _inflated_size(inflate, data: bytes) -> int:
    """Feed ``data`` to a zlib decompressor, keeping only the count (1 MiB at a time at most)."""
    size = len(inflate.decompress(data, _CHUNK))
    while inflate.unconsumed_tail and not inflate.eof:
        size += len(inflate.decompress(inflate.unconsumed_tail, _CHUNK))
    return size


# numpy dtype (native order) -> IDX type code, for writing
_CODE_FOR_DTYPE = {dtype.newbyteorder("="): code for code, (_, dtype) in IDX_DTYPES.items()}


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file appears complete or not at all: we write a temporary file in the same folder
    and rename it, so an interrupted write never leaves a half file that looks valid.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_FOR_DTYPE.get(array.dtype.newbyteorder("="))
    if code is None:
        supported = ", ".join(str(dtype.newbyteorder("=")) for dtype in _CODE_FOR_DTYPE)
        raise ValueError(f"write_idx({path}): IDX cannot store dtype {array.dtype}; "
                         f"convert the array with .astype() to one of {supported}")
    if array.ndim > 255 or any(size >= 2**32 for size in array.shape):
        raise ValueError(f"write_idx({path}): IDX allows at most 255 dimensions of size < 2**32, "
                         f"got shape {array.shape}")

    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(IDX_DTYPES[code][1]).tobytes(order="C")  # big-endian, row-major

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as raw:
            if path.suffix == ".gz":
                # mtime=0 makes the output byte-for-byte reproducible.
                with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as compressed:
                    compressed.write(header + payload)
            else:
                raw.write(header + payload)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
