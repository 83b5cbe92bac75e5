"""Automatic checks for the course's exercises.

Each ``check_<name>(fn)`` runs the learner's function on cases with known answers and
prints one line: ``PASS`` with what was checked, or ``FAIL`` with a hint aimed at the usual
mistake. It returns nothing, so a notebook cell shows just that line, and it never raises,
so a notebook keeps running when an exercise is still unsolved (a stub raising
NotImplementedError is reported as "not done yet").

A check must never be wrong, in either direction. So it compares *values*, whatever dtype
or container a right answer arrives in (float64 and NumPy-built answers are right), at the
float32 tolerance of :mod:`vae_course.tolerances`; it asks for a type only where the exercise
does (a float32 array, a Python float, a tensor), and says what to change. Its cases are
chosen so that no known wrong formula agrees with the right one on all of them, and each
known slip (a table of wrong formulas per check) gets its own hint.

How a check runs, compares and reports (the machinery every check shares) is in
:mod:`vae_course.grading`.  The checks themselves live one module per chapter, named after
the chapter's notebook (``ch04_sampling_layer`` holds chapter 4's), each with its cases and
its table of known mistakes.  Import them from here: ``from vae_course.exercises import check_reparameterize``.
"""
from __future__ import annotations

from .ch01_getting_started import check_class_counts
from .ch02_idx_format import check_parse_idx_header, check_read_images
from .ch03_autoencoder_to_vae import check_conv_output_size, check_transposed_conv_output_size
from .ch04_sampling_layer import check_reparameterize, check_score_grad_sigma, check_lognormal
from .ch05_elbo import check_kl_normal, check_log_normal_pdf
from .ch06_training_loop import check_training_step
from .ch07_testing import check_reconstruction_errors
from .ch08_generating import check_interpolate, check_normal_grid
from .ch09_beyond import check_logmeanexp
from .ch11_course_recipe import check_gaussian_nll

__all__ = [
    "check_class_counts", "check_parse_idx_header", "check_read_images",
    "check_conv_output_size", "check_transposed_conv_output_size", "check_reparameterize",
    "check_score_grad_sigma", "check_lognormal", "check_kl_normal", "check_log_normal_pdf",
    "check_training_step", "check_reconstruction_errors", "check_interpolate",
    "check_normal_grid", "check_logmeanexp", "check_gaussian_nll",
]
