"""Checks of chapter 1's exercises (the data; ``notebooks/01_getting_started.ipynb``)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..grading import as_array, call, expect, run_check


def check_class_counts(fn: Callable[[np.ndarray], np.ndarray]) -> None:
    """``fn(labels) -> counts`` where ``counts[k]`` is how many labels equal k (10 classes).
    Any container of whole numbers will do (array, list, tensor): the exercise asks for counts."""
    def body():
        labels = np.array([3, 1, 3, 0, 7, 7, 7, 3], dtype=np.uint8)  # no 8 or 9: minlength matters
        got, want = as_array(call(fn, labels.copy())), np.bincount(labels, minlength=10)
        expect(got.shape != (len(np.unique(labels)),), "np.unique leaves out the classes with no "
                "images, so counts[k] ends up under the wrong class; np.bincount(labels, minlength=10)")
        expect(got.shape != (labels.max() + 1,), "np.bincount stops at the largest label present "
                "(7 here): pass minlength=10 so that classes 8 and 9 get their 0")
        expect(got.shape == (10,), f"expected 10 counts (one per class), got shape {got.shape}")
        expect(not np.isclose(got.sum(), 1), "these are fractions: return how many labels equal "
                "each class, not their share")
        expect(np.array_equal(got, want), f"counts {got.tolist()} are wrong for labels "
                f"{labels.tolist()}: counts[k] must be the number of labels equal to k")
        return "counts every class, including empty ones"
    run_check("class_counts", body)
