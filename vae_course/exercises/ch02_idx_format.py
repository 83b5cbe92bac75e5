"""Checks of chapter 2's exercises (IDX; ``notebooks/02_idx_format.ipynb``)."""
from __future__ import annotations

import numbers
import struct
from typing import Callable

import numpy as np

from ..grading import as_array, call, close, expect, run_check


def _idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)


def _magic_hint(got, data: bytes, want: int) -> str | None:
    """What is wrong with a magic number, or None if it is right."""
    if isinstance(got, tuple):
        return f"magic is the tuple {got}: struct.unpack always returns a tuple, take its [0]"
    if not isinstance(got, numbers.Integral) or isinstance(got, bool):
        return f"magic should be an int, got {type(got).__name__}: struct.unpack('>I', data[:4])[0]"
    if got == struct.unpack("<I", data[:4])[0]:
        return ("the magic number came out byte-swapped: IDX is big-endian, "
                "use struct.unpack('>I', ...) (the '>' matters)")
    if got == data[2]:
        return "that is only the type byte data[2]: the magic number is all of the first 4 bytes"
    return None if got == want else (f"magic should be {want}, got {got}; read the first 4 bytes "
                                     "as one big-endian unsigned int")


def check_parse_idx_header(fn: Callable[[bytes], tuple]) -> None:
    """``fn(data) -> (magic, sizes)``: the magic number as an int and the list of dimension sizes."""
    def body():
        cases = [((0x08, (10000, 28, 28)), 2051), ((0x08, (60000,)), 2049), ((0x0D, (3, 4)), 3330)]
        for (code, shape), magic in cases:
            data = _idx_header(code, shape) + b"\x00" * 8
            got = call(fn, data)
            expect(isinstance(got, tuple) and len(got) == 2,
                    f"return a tuple (magic, sizes), got {type(got).__name__}: `return magic, sizes`")
            hint = _magic_hint(got[0], data, magic)
            expect(hint is None, hint)
            expect(isinstance(got[1], (list, tuple, np.ndarray)),
                    f"sizes should be a list of ints, got {type(got[1]).__name__}")
            sizes = [int(s) for s in got[1]]
            expect(len(sizes) == len(shape), f"{len(shape)} sizes expected, got {len(sizes)}: "
                    "do not assume three dimensions, the number of sizes is data[3]")
            expect(sizes != list(struct.unpack(f"<{len(shape)}I", data[4:4 + 4 * len(shape)])),
                    "the sizes came out byte-swapped: read them big-endian, '>I'")
            expect(sizes == list(shape), f"sizes should be {list(shape)}, got {sizes}; each is a "
                    "big-endian int32, starting at byte 4")
        return "image, label and float headers parsed, big-endian"
    run_check("parse_idx_header", body)


def check_read_images(fn: Callable[[bytes], np.ndarray]) -> None:
    """``fn(data) -> images`` of shape (N, rows, cols), float32 in [0, 1], from raw IDX image bytes."""
    def body():
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
        pixels[0, 0, :2] = 0, 255  # both ends of the range, so that 255 must become exactly 1
        data = _idx_header(0x08, pixels.shape) + pixels.tobytes()
        got = call(fn, data)
        expect(hasattr(got, "dtype"), f"return a float32 NumPy array, got {type(got).__name__}")
        values = as_array(got)
        expect(values.shape == pixels.shape, f"shape should be {pixels.shape} (N, rows, cols), got {values.shape}")
        expect(not close(values, pixels), "values are still 0..255: divide by 255 to scale them to [0, 1]")
        expect(not close(values, pixels / 256), "divide by 255, the largest pixel value, not by "
                "256: a white pixel (255) must become exactly 1.0")
        expect(not close(values, pixels.reshape(3, 5, 4).transpose(0, 2, 1) / 255),
                "rows and columns are swapped: IDX stores each image row by row (C order), which is "
                "what reshape(n, rows, cols) gives in numpy; MATLAB needs a permute, Python does not")
        expect(close(values, pixels / 255), "pixel values do not match the payload / 255; "
                "the payload starts right after the header (4 + 4*ndim bytes)")
        dtype = str(got.dtype).removeprefix("torch.")
        expect(dtype == "float32", f"the values are right but the dtype is {dtype}; the exercise "
                "asks for float32 (what the model takes, half the memory of float64): "
                ".astype(np.float32) before dividing by 255")
        return "payload read after the header, reshaped row-major and scaled to [0, 1]"
    run_check("read_images", body)
