"""Checks of chapter 3's exercises (shapes; ``notebooks/03_autoencoder_to_vae.ipynb``)."""
from __future__ import annotations

import numbers
from typing import Callable

from ..grading import Fail, call, expect, run_check


def _sizes(fn: Callable, cases: list[tuple]) -> list[int]:
    """The learner's output sizes for every case; a size is a whole number, so a Python int."""
    sizes = []
    for args in cases:
        got = call(fn, *args)
        if isinstance(got, float) and got.is_integer():
            raise Fail(f"return an int, got the float {got}: use floor division // (not /) or int(...)")
        expect(not isinstance(got, float), f"for {args} got {got}, not a whole number: round "
                "down with floor division //")
        expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
                f"return a Python int, got {type(got).__name__}: int(...) converts it")
        sizes.append(int(got))
    return sizes


def _check_sizes(fn: Callable, cases: list[tuple], formula: Callable, slips: list, name: str) -> None:
    """Compare on every case, then name the wrong formula that reproduces all the learner's sizes."""
    got = _sizes(fn, cases)
    bad = [(args, g, formula(*args)) for args, g in zip(cases, got) if g != formula(*args)]
    if bad:
        hint = next((h for slip, h in slips if got == [slip(*args) for args in cases]), None)
        args, g, want = bad[0]
        raise Fail(hint or f"for {args} expected {want}, got {g}; the formula is {name}")


def check_conv_output_size(fn: Callable[[int, int, int, int], int]) -> None:
    """``fn(size, kernel, stride, padding) -> output size`` of a convolution along one axis."""
    def body():
        cases = [(28, 3, 2, 1), (14, 3, 2, 1), (28, 3, 2, 0), (13, 3, 2, 0), (7, 7, 1, 0), (32, 5, 1, 2)]
        slips = [
            (lambda n, k, s, p: (n + 2 * p - k) // s, "add 1: the kernel's first position counts too"),
            (lambda n, k, s, p: (n - k) // s + 1, "include the padding: size + 2*padding"),
            (lambda n, k, s, p: (n + p - k) // s + 1, "padding is added on both sides: 2*padding"),
            (lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1,
             "round down, not up: a last step that does not fit is dropped (floor division //)"),
        ]
        _check_sizes(fn, cases, lambda n, k, s, p: (n + 2 * p - k) // s + 1, slips,
                     "floor((size + 2*padding - kernel) / stride) + 1")
        # short enough for the book's output column: a longer line wrapped there ("28 ->" / "14")
        return "'same': 28 -> 14 -> 7; 'valid': 28 -> 13 -> 6"
    run_check("conv_output_size", body)


def check_transposed_conv_output_size(fn: Callable[[int, int, int, int, int], int]) -> None:
    """``fn(size, kernel, stride, padding, output_padding) -> size`` of a transposed convolution."""
    def body():
        # the chapter's layers all give size*stride, so two cases where that shortcut is wrong
        cases = [(7, 3, 2, 1, 1), (14, 3, 2, 1, 1), (1, 7, 7, 0, 0), (28, 3, 1, 1, 0),
                 (5, 3, 2, 0, 0), (4, 5, 3, 2, 1)]
        slips = [
            (lambda n, k, s, p, op: n * s, "size*stride only holds when kernel + output_padding - "
             "2*padding equals the stride, as in the chapter's layers; in general it is "
             "(size - 1)*stride - 2*padding + kernel + output_padding"),
            (lambda n, k, s, p, op: (n - 1) * s - 2 * p + k, "add output_padding (the extra row "
             "at one side)"),
            (lambda n, k, s, p, op: n * s - 2 * p + k + op, "kernels are stamped (size - 1) "
             "strides apart: (size - 1)*stride, not size*stride"),
            (lambda n, k, s, p, op: (n - 1) * s - p + k + op, "padding is cropped from both sides: -2*padding"),
            (lambda n, k, s, p, op: (n - 1) * s + 2 * p + k + op, "padding is cropped (subtracted) "
             "in a transposed convolution, not added"),
        ]
        _check_sizes(fn, cases, lambda n, k, s, p, op: (n - 1) * s - 2 * p + k + op, slips,
                     "(size - 1)*stride - 2*padding + kernel + output_padding")
        return "7 -> 14 -> 28 (MATLAB's 'same' cropping) and 1 -> 7 (R2019b's first layer)"
    run_check("transposed_conv_output_size", body)
