"""How an exercise check grades a learner's function: the machinery behind ``vae_course.exercises``.

A check runs the learner's function, compares what it returns with known answers and prints
one line, ``PASS`` with what was checked or ``FAIL`` with a hint; it never raises into the
notebook. This module holds what every check shares:

- :func:`run_check` turns a check's body into that one line (a stub's NotImplementedError is
  "not done yet", a :class:`Fail` is its hint, a crash of the learner's code is traced back to
  the learner's own line, not into this package or torch);
- :func:`call` runs the learner's function; :func:`expect` fails with a hint;
- :func:`as_array`, :func:`close` and :func:`expect_tensor` compare *values*, whatever dtype
  or container a right answer arrives in, at the float32 tolerance of :mod:`vae_course.tolerances`;
- :func:`known_slip` names the known wrong formula that reproduces a wrong answer.
"""
from __future__ import annotations

import os
import sysconfig
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .rng import preserved_rng
from .tolerances import ONE_PASS_RTOL


class Fail(Exception):
    """A failed expectation, with the hint to show."""


class _Crash(Exception):
    """The learner's function raised; the exception it raised is ``__cause__``."""


def run_check(name: str, body: Callable[[], str]) -> bool:
    """Print the check's one line: ``PASS name: body()`` or ``FAIL name: why``. It never
    raises, so a notebook runs on past an unsolved exercise; returns whether it passed."""
    try:
        with preserved_rng():  # every generator (CPU, GPUs, Python, NumPy) stays the learner's
            detail = body()
    except NotImplementedError:
        print(f"FAIL {name}: not done yet - replace `raise NotImplementedError` with your code.")
        return False
    except Fail as fail:
        print(f"FAIL {name}: {fail}")
        return False
    except _Crash as crash:
        print(f"FAIL {name}: {_crash_report(crash.__cause__)}")
        return False
    except Exception as exc:  # raised by the check itself, choking on what the function returned
        print(f"FAIL {name}: your function returned something the check cannot use "
              f"({type(exc).__name__}: {exc}); compare its return type and shape with the exercise")
        return False
    print(f"PASS {name}: {detail}")
    return True


def call(fn: Callable, *args):
    """Run the learner's function. A crash becomes ``_Crash``, so that the report blames the
    learner's line and not the check; ``None`` (a forgotten ``return``) gets its own hint."""
    try:
        result = fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:
        raise _Crash() from exc
    if result is None:
        raise Fail("your function returned None - did you forget `return`?")
    return result


# Code the learner did not write: this package (an editable install too), torch, NumPy, the
# standard library and anything installed (site-packages, or Colab's dist-packages).
_LIBRARIES = tuple(os.path.dirname(os.path.abspath(path)) + os.sep
                   for path in (__file__, torch.__file__, np.__file__)) \
    + (os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep,)


def _is_library(filename: str) -> bool:
    parts = Path(filename).parts
    return ("site-packages" in parts or "dist-packages" in parts
            or os.path.abspath(filename).startswith(_LIBRARIES))


def _source_name(filename: str) -> str:
    """A notebook cell runs from a temporary file; IPython knows it as In[n], as the learner does."""
    try:
        from IPython import get_ipython
        label = get_ipython().compile.format_code_name(filename)
    except (ImportError, AttributeError):  # no IPython, not in IPython, or an old IPython
        label = None
    return f"cell {label[1]}" if label else filename


def _crash_report(exc: BaseException) -> str:
    """The exception and the learner's own line where it happened: the innermost frame of
    their code, not a line of this package or of torch that their call ended up in."""
    lines = str(exc).strip().splitlines()
    report = f"your function raised {type(exc).__name__}" + (f": {lines[0]}" if lines else "")
    mine = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_library(f.filename)]
    if mine:
        where = f"line {mine[-1].lineno} of {_source_name(mine[-1].filename)}"
        report += f" ({where}: {mine[-1].line})" if mine[-1].line else f" ({where})"
    if "must match the size of tensor" in str(exc):  # torch's broadcasting error
        report += "; shapes do not line up: a max or sum taken to broadcast back needs keepdim=True"
    return report


def expect(condition: bool, hint: str) -> None:
    if not condition:
        raise Fail(hint)


def as_array(value) -> np.ndarray:
    """Values as a float64 NumPy array, however they were built: a tensor of any dtype on any
    device, a NumPy array, a list. Checks compare values, not dtypes (torch.allclose refuses
    float64 against float32, and a float64 answer is a right answer)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"your function should return numbers, got {type(value).__name__}") from None


def close(got, want, rtol: float = ONE_PASS_RTOL) -> bool:
    """Equal up to float32 rounding, the course's rule 2 (:mod:`vae_course.tolerances`):
    ``|got - want| <= rtol * (|want| + max|want|)``, plus 1e-6 for values that are exactly 0.
    Shapes must agree; an infinity matches only the same infinity, NaN nothing."""
    a, b = as_array(got), as_array(want)
    scale = np.abs(b[np.isfinite(b)]).max(initial=0.0)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale + 1e-6))


def known_slip(got, slips, *args) -> str | None:
    """The hint of the first known wrong formula that reproduces the learner's result: a FAIL
    that names the slip teaches more than "values differ"."""
    for slip, hint in slips:
        try:
            if close(got, slip(*args)):
                return hint
        except RuntimeError:  # this slip cannot even run on these inputs (shapes that do not broadcast)
            pass
    return None


def expect_tensor(value, what: str) -> torch.Tensor:
    """Where the exercise asks for a tensor (torch code uses it next), say how to get one.
    Returns it on the CPU, autograd intact, so a GPU answer compares with CPU references."""
    if isinstance(value, np.ndarray):
        raise Fail(f"return {what} as a torch tensor, not a NumPy array: torch.as_tensor(...)")
    expect(isinstance(value, torch.Tensor), f"return {what} as a torch tensor, got {type(value).__name__}")
    return value.cpu()
