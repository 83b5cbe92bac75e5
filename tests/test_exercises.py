"""The exercise checks (``vae_course.exercises``) and their use in the notebooks.

A check is what a learner sees first, so it must print exactly one ``PASS``/``FAIL`` line,
return None and never raise, whatever the learner's function does. The reference solutions
below are the notebooks' solution cells, made self-contained; each check also gets one
typical mistake whose targeted hint must show. The last tests keep the book and the package
from drifting apart.
"""
import inspect
import json
import math
import re
import struct
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
import torch

from vae_course import exercises, grading
from vae_course.losses import elbo_terms

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# name -> check_<name>, discovered so that a newly added check cannot be forgotten here
CHECKS = {name.removeprefix("check_"): fn
          for name, fn in inspect.getmembers(exercises, inspect.isfunction)
          if name.startswith("check_") and fn.__module__.startswith(exercises.__name__ + ".")}


def run_check(capsys, name, fn) -> str:
    """Run check_<name>(fn), assert it returned None and printed one line; return that line."""
    assert CHECKS[name](fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, f"check_{name} printed {len(lines)} lines: {lines}"
    return lines[0]


# --- reference solutions (the notebooks' solution cells) ------------------------------------

def count_classes(labels):
    return np.bincount(np.asarray(labels), minlength=10)


def parse_header(data):
    (magic,) = struct.unpack(">I", data[:4])
    ndim = data[3]
    return magic, list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))


def read_images(data):
    n, rows, cols = struct.unpack(">III", data[4:16])
    pixels = np.frombuffer(data, dtype=np.uint8, offset=16, count=n * rows * cols)
    return pixels.reshape(n, rows, cols).astype(np.float32) / 255


def conv_output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def transposed_conv_output_size(size, kernel, stride, padding, output_padding):
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def reparameterize(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_normal(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)


def log_normal_pdf(sample, mean, logvar):
    return (-0.5 * ((sample - mean) ** 2 * torch.exp(-logvar) + logvar
                    + math.log(2 * math.pi))).sum(dim=1)


def training_step(model, optimizer, x):
    loss = elbo_terms(model(x), x, reconstruction="half-sse", kl="closed-form").loss.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def reconstruction_mse(model, x):
    with torch.no_grad():
        mu, _ = model.encode(x)
        x_hat = model.decode(mu)
    return (x_hat - x).pow(2).flatten(1).mean(dim=1)


def interpolate(z_a, z_b, steps):
    alpha = torch.linspace(0, 1, steps, dtype=z_a.dtype)[:, None]
    return (1 - alpha) * z_a + alpha * z_b


def normal_grid(n):
    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])


def logmeanexp(a):
    m = a.max(dim=-1, keepdim=True).values
    return (m + torch.log(torch.exp(a - m).mean(dim=-1, keepdim=True))).squeeze(-1)


def score_grad_sigma(f, mu, sigma, eps):
    z = mu + sigma * eps
    score = ((z - mu) ** 2 - sigma**2) / sigma**3
    return (f(z) * score).mean()


def lognormal_sample(mu, sigma, eps):
    return torch.exp(mu + sigma * eps)


def gaussian_nll(x_hat, x, sigma):
    per_pixel = 0.5 * ((x - x_hat) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    return per_pixel.flatten(1).sum(dim=1)


SOLUTIONS = {
    "class_counts": count_classes,
    "parse_idx_header": parse_header,
    "read_images": read_images,
    "conv_output_size": conv_output_size,
    "transposed_conv_output_size": transposed_conv_output_size,
    "reparameterize": reparameterize,
    "kl_normal": kl_normal,
    "log_normal_pdf": log_normal_pdf,
    "training_step": training_step,
    "reconstruction_errors": reconstruction_mse,
    "interpolate": interpolate,
    "normal_grid": normal_grid,
    "logmeanexp": logmeanexp,
    "score_grad_sigma": score_grad_sigma,
    "lognormal": lognormal_sample,
    "gaussian_nll": gaussian_nll,
}


# --- typical mistakes, each with a fragment of the hint it must get --------------------------

def bad_training_step(model, optimizer, x):
    """Forgets optimizer.zero_grad(): the second step's gradients add up."""
    loss = elbo_terms(model(x), x, reconstruction="half-sse").loss.mean()
    loss.backward()
    optimizer.step()
    return loss.item()


def bad_reconstruction_sse(model, x):
    """Sum of squares instead of the per-pixel mean."""
    with torch.no_grad():
        return (model.reconstruct(x) - x).pow(2).flatten(1).sum(dim=1)


MISTAKES = {
    "class_counts": (lambda labels: np.unique(labels, return_counts=True)[1],
                     "np.unique leaves out"),
    "parse_idx_header": (lambda data: (struct.unpack("<I", data[:4])[0],
                                       list(struct.unpack(f"<{data[3]}I", data[4:4 + 4 * data[3]]))),
                         "big-endian"),
    "read_images": (lambda data: read_images(data) * 255, "divide by 255"),
    "conv_output_size": (lambda size, k, s, p: (size + 2 * p - k) // s, "add 1"),
    "transposed_conv_output_size": (lambda size, k, s, p, op: (size - 1) * s - 2 * p + k,
                                    "output_padding"),
    "reparameterize": (lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu),
                       "exp(0.5*logvar)"),
    "kl_normal": (lambda mu, logvar: (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1),
                  "factor 0.5"),
    "log_normal_pdf": (lambda x, m, lv: (-0.5 * ((x - m) ** 2 * torch.exp(-lv) + lv)).sum(dim=1),
                       "log(2*pi)"),
    "training_step": (bad_training_step, "zero_grad"),
    "reconstruction_errors": (bad_reconstruction_sse, "sum of squares"),
    "interpolate": (lambda a, b, steps: a + (b - a) * (torch.arange(steps) / steps)[:, None],
                    "last z_b"),
    "normal_grid": (lambda n: torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0, 1, n)).numpy(),
                    "infinite values"),
    "logmeanexp": (lambda a: torch.log(torch.exp(a).mean(dim=-1)), "subtract the max"),
    "score_grad_sigma": (lambda f, mu, sigma, eps: (f(mu + sigma * eps) * eps / sigma).mean(),
                         "estimate for mu"),
    "lognormal": (lambda mu, sigma, eps: mu + sigma * eps, "exponentiate"),
    "gaussian_nll": (lambda x_hat, x, sigma: 0.5 * (x - x_hat).pow(2).flatten(1).sum(dim=1),
                     "that is half the SSE"),
}


def test_every_check_has_a_solution_and_a_mistake_here():
    """A check added to the package must get its cases in this file too."""
    assert len(CHECKS) >= 15
    assert set(SOLUTIONS) == set(CHECKS)
    assert set(MISTAKES) == set(CHECKS)
    assert sorted(exercises.__all__) == sorted(f"check_{name}" for name in CHECKS)


# --- every check, whatever the learner hands it ----------------------------------------------

@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stub_is_reported_as_not_done_yet(capsys, name):
    """The notebooks' stubs raise NotImplementedError: one friendly line, no traceback."""
    def stub(*args):
        raise NotImplementedError  # your code here

    line = run_check(capsys, name, stub)
    assert line.startswith(f"FAIL {name}: not done yet - replace `raise NotImplementedError`")


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_crash_is_reported_with_its_exception(capsys, name):
    """A learner's crash is named (type and message) instead of propagating."""
    def crashing(*args):
        raise ValueError("boom")

    line = run_check(capsys, name, crashing)
    assert line.startswith(f"FAIL {name}: your function raised ValueError: boom (line ")


@pytest.mark.parametrize("nonsense", [None, 0, "nonsense"], ids=["None", "zero", "string"])
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_nonsense_result_fails_without_raising(capsys, name, nonsense):
    """Returning the wrong kind of thing is a FAIL line, never an exception in the notebook."""
    line = run_check(capsys, name, lambda *args: nonsense)
    assert line.startswith(f"FAIL {name}: ")


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_reference_solution_passes(capsys, name):
    """The notebook's solution passes, so its solution cell shows PASS."""
    line = run_check(capsys, name, SOLUTIONS[name])
    assert re.fullmatch(rf"PASS {name}: \S.*", line), line


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_typical_mistake_gets_its_hint(capsys, name):
    """The usual mistake fails with the hint written for it, not a generic message."""
    mistake, hint = MISTAKES[name]
    line = run_check(capsys, name, mistake)
    assert line.startswith(f"FAIL {name}: ")
    assert hint in line, line


def test_read_images_names_swapped_rows_and_columns(capsys):
    """MATLAB's column-major reading, ported without its permute, should get the swap hint."""
    def column_major(data):
        n, rows, cols = struct.unpack(">III", data[4:16])
        pixels = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, cols, rows)
        return pixels.transpose(0, 2, 1).astype(np.float32) / 255

    assert "swapped" in run_check(capsys, "read_images", column_major)


def test_a_result_the_check_cannot_use_is_not_blamed_on_a_crash_of_the_learner(capsys):
    """If the check itself chokes (not the learner's function), the message says so instead of
    pointing at a line of the package as if the learner's code had raised there."""
    def body():
        return 1 + "a"  # the check's own code failing on an unexpected value

    assert grading.run_check("demo", body) is False
    line = capsys.readouterr().out.strip()
    assert line.startswith("FAIL demo: your function returned something the check cannot use (TypeError")
    assert "vae_course" not in line and "grading.py" not in line


def test_checks_leave_the_learners_random_stream_alone(capsys):
    """Checks that seed torch internally must not reset the notebook's own random draws."""
    for name in ("reparameterize", "training_step"):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        run_check(capsys, name, SOLUTIONS[name])
        assert torch.equal(torch.rand(3), expected), name


def test_training_step_wants_a_python_float_not_the_loss_tensor(capsys):
    """The exercise asks for the loss as a Python float; the tensor gets told to use .item()."""
    def step(model, optimizer, x):
        loss = elbo_terms(model(x), x, reconstruction="half-sse").loss.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    line = run_check(capsys, "training_step", step)
    assert line.startswith("FAIL training_step: return the loss as a Python float, loss.item()"), line


# --- the book and the package agree ----------------------------------------------------------

def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _calls_and_local_checks():
    """Per notebook: the check_<name> it calls and the check_<name> it defines itself."""
    found = {}
    for notebook in NOTEBOOKS:
        code = _code(notebook)
        local = set(re.findall(r"^def check_(\w+)\(", code, flags=re.M))
        called = set(re.findall(r"\bcheck_(\w+)\(", code)) - local
        found[notebook.name] = (called, local)
    return found


def test_every_package_check_is_used_by_a_notebook():
    """A check no chapter calls is dead code, or its exercise was lost from the book."""
    assert NOTEBOOKS
    used = set().union(*(called for called, _ in _calls_and_local_checks().values()))
    assert sorted(set(CHECKS) - used) == []


def test_every_check_called_in_a_notebook_exists():
    """A notebook calling a check the package lacks (or shadows) breaks when it runs."""
    for notebook, (called, local) in _calls_and_local_checks().items():
        assert sorted(called - set(CHECKS)) == [], f"{notebook} calls unknown checks"
        assert sorted(local & set(CHECKS)) == [], f"{notebook} redefines package checks"


def test_each_chapters_checks_live_in_the_module_named_after_its_notebook():
    """A learner stuck in chapter 4 finds its checks in ``exercises/ch04_sampling_layer.py``:
    every check sits in the module of the one notebook that calls it."""
    calls = _calls_and_local_checks()
    for name, fn in CHECKS.items():
        module = fn.__module__.rsplit(".", 1)[1]  # e.g. ch04_sampling_layer
        callers = [nb for nb, (called, _) in calls.items() if name in called]
        assert callers == [module.removeprefix("ch") + ".ipynb"], (name, module, callers)
