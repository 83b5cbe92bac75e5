"""``vae-course doctor``: does the course compute the right numbers on this machine's device?

In under a minute it trains every recipe for a few steps on the chosen device and on the CPU,
compares losses, gradients and weights by the tolerance policy (:mod:`vae_course.tolerances`),
runs the evaluation functions while watching that no float64 tensor lands on a GPU (Apple's
MPS has none), and says what ``fit`` will use here.  Run it in Colab, on a Mac or a laptop::

    vae-course doctor                # or, in a notebook: import vae_course.doctor as d; d.doctor()
    vae-course doctor --json         # the same checks as JSON (benchmarks/gpu.py stores it)
"""
from __future__ import annotations

import contextlib
import math
import os
import platform
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch.overrides import TorchFunctionMode

from .evaluate import encode_means, evaluate_elbo, iwae_log_likelihood, reconstruction_errors
from .losses import elbo_terms
from .models import build_model
from .vae import VAEOutput
from .recipes import RECIPES
from .rng import randn
from .tolerances import assert_close_after_steps, assert_one_pass_close
from .devices import bf16_supported, check_compilable, has_convolutions, mps_available, pick_device

STEPS = 3        # Adam steps per recipe
BATCH = 16       # images per step


# --------------------------------------------------------------------------- float64 watch

_LEAVES_DEVICE = {torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.item}


class Float64Watch(TorchFunctionMode):
    """Records every float64 tensor made on an accelerator while the block runs.

    On a GPU it looks at each result's device.  On the CPU (``simulate=True``) it pretends:
    tensors given to :meth:`mark` (the model's parameters, the data) and everything computed
    from them count as "on the device" until ``.cpu()``, ``.to("cpu")``, ``.numpy()``,
    ``.tolist()`` or ``.item()`` takes them off; a factory call with an explicit ``device=``
    puts its result on the device.  So a ``.double()`` before ``.cpu()`` is caught here too.
    """

    def __init__(self, simulate: bool = False):
        super().__init__()
        self.simulate = simulate
        self.found: list[str] = []

    def mark(self, *things) -> "Float64Watch":
        for thing in things:
            tensors = thing.parameters() if isinstance(thing, torch.nn.Module) else [thing]
            for t in tensors:
                t._vae_on_device = True
        return self

    def _on_device(self, t: torch.Tensor) -> bool:
        if not self.simulate:
            return t.device.type != "cpu"
        return bool(getattr(t, "_vae_on_device", False))

    def _result_on_device(self, func, args, kwargs) -> bool:
        if func in _LEAVES_DEVICE:
            return False
        if func is torch.Tensor.to:
            target = kwargs.get("device", next((a for a in args[1:] if isinstance(a, (str, torch.device))), None))
            if isinstance(target, str) and target.startswith("cpu"):
                return False          # .to("cpu"): off the device
            if isinstance(target, torch.device):
                return True           # .to(device): onto the (simulated) device
        if kwargs.get("device") is not None:
            return True
        inputs = [a for a in list(args) + list(kwargs.values()) for a in (a if isinstance(a, (list, tuple)) else [a])]
        return any(isinstance(a, torch.Tensor) and self._on_device(a) for a in inputs)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if not self.simulate:
            outputs = result if isinstance(result, (list, tuple)) else [result]
            for out in outputs:
                if isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.device.type != "cpu":
                    self.found.append(_describe(func))
            return result
        if func in _LEAVES_DEVICE or func is torch.Tensor.to:
            if isinstance(result, torch.Tensor) and args and result is args[0]:
                result = result.view_as(result)  # .cpu() of a CPU tensor returns itself: a fresh alias
        if isinstance(result, torch.Tensor) and self._result_on_device(func, args, kwargs):
            result._vae_on_device = True
            if result.dtype == torch.float64:
                self.found.append(_describe(func))
        return result


def _describe(func) -> str:
    """``name (file:line)``: the operator and the line of the course's code that called it."""
    package = os.path.dirname(os.path.abspath(__file__))
    ours = [f for f in traceback.extract_stack()[:-2]
            if f.filename.startswith(package) and not f.filename.endswith("doctor.py")]
    where = f"{os.path.basename(ours[-1].filename)}:{ours[-1].lineno}" if ours else "outside vae_course"
    return f"{getattr(func, '__name__', func)} ({where})"


# --------------------------------------------------------------------------- checks

@dataclass
class Check:
    name: str
    ok: bool | None   # None: information only
    detail: str


def _synthetic_batch(seed: int) -> torch.Tensor:
    return torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _step_losses(model: torch.nn.Module, recipe, x: torch.Tensor, device: torch.device,
                 channels_last: bool) -> tuple[list[float], list[torch.Tensor]]:
    """STEPS Adam steps with noise drawn on the CPU; the losses and the first step's gradients."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    x = (x > 0.5).float() if recipe.binarize != "none" else x
    x = x.to(device)
    losses, first_grads = [], []
    for step in range(STEPS):
        mu, logvar = model.encode(x)
        eps = randn(mu.shape, generator=torch.Generator().manual_seed(step), device=device)
        z = mu + torch.exp(0.5 * logvar) * eps
        out = VAEOutput(model.decode_logits(z), z, mu, logvar)
        loss = elbo_terms(out, x, reconstruction=recipe.reconstruction, kl=recipe.kl,
                          beta=recipe.beta, sigma=recipe.sigma).loss.mean()
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            first_grads = [p.grad.detach().cpu().clone() for p in model.parameters()]
        optimizer.step()
        losses.append(loss.item())
    return losses, first_grads


def check_recipe(name: str, device: torch.device) -> Check:
    """A few steps of ``name`` on ``device`` (as fit runs it) against the CPU in float32."""
    recipe = RECIPES[name]
    fresh = []
    for _ in range(2):
        torch.manual_seed(0)
        fresh.append(build_model(recipe.arch, **recipe.model_kwargs))
    reference, candidate = fresh
    x = _synthetic_batch(1)
    channels_last = device.type == "cpu" and has_convolutions(candidate)  # fit's default
    with _float32_matmuls():
        ref_losses, ref_grads = _step_losses(reference, recipe, x, torch.device("cpu"), False)
        losses, grads = _step_losses(candidate, recipe, x, device, channels_last)
    try:
        assert_one_pass_close(losses[0], ref_losses[0], "first loss")
        for (pname, _), g, h in zip(reference.named_parameters(), grads, ref_grads):
            assert_one_pass_close(g, h, f"gradient of {pname}")
        assert_close_after_steps(list(candidate.parameters()), list(reference.parameters()),
                                 lr=recipe.lr, steps=STEPS)
        assert_one_pass_close(losses, ref_losses, "losses")
    except AssertionError as error:
        return Check(f"train {name}", False, str(error))
    layout = ", channels-last" if channels_last else ""
    return Check(f"train {name}", True, f"{STEPS} steps on {device}{layout} = CPU: loss "
                                       f"{ref_losses[0]:.4g} -> {ref_losses[-1]:.4g}, gradients and weights agree")


@contextlib.contextmanager
def _float32_matmuls() -> Iterator[None]:
    """Turn TF32 off on CUDA for the comparison: TF32 keeps 10 mantissa bits, not float32's 23."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_evaluation(device: torch.device) -> Check:
    """Evaluation and IWAE run on ``device`` and never put a float64 tensor there."""
    torch.manual_seed(0)
    model = build_model("tf-cvae", latent_dim=2).to(device)
    x = (_synthetic_batch(2) > 0.5).float().to(device)
    watch = Float64Watch(simulate=device.type == "cpu").mark(model, x)
    with watch:
        test = evaluate_elbo(model, x, reconstruction="bernoulli", kl="monte-carlo", batch_size=8)
        reconstruction_errors(model, x, batch_size=8)
        encode_means(model, x, batch_size=8)
        nll = -iwae_log_likelihood(model, x, k=16, batch_size=8, chunk=8,
                                   generator=torch.Generator().manual_seed(0))
    if watch.found:
        return Check("evaluate, IWAE", False, "float64 on the device: " + "; ".join(sorted(set(watch.found))))
    if not (math.isfinite(test["loss"]) and nll.size == BATCH and bool((nll == nll).all())):
        return Check("evaluate, IWAE", False, f"non-finite results: {test}, {nll[:3]}")
    return Check("evaluate, IWAE", True, f"test ELBO {test['loss']:.1f} nats, IWAE(k=16) NLL "
                                         f"{float(nll.mean()):.1f} nats; no float64 on the device")


def check_progress_bars() -> Check:
    """Whether tqdm can draw widget progress bars (else it prints text ones, which also work)."""
    try:
        import ipywidgets
        version = ipywidgets.__version__
    except Exception as error:  # noqa: BLE001 - any import failure means text bars
        return Check("progress bars", None, f"text bars (ipywidgets unavailable: {error})")
    major, minor = (int(p) for p in version.split(".")[:2])
    ok = (major, minor) >= (7, 6)
    detail = f"ipywidgets {version}: widget bars in notebooks" if ok else \
        f"ipywidgets {version} is older than 7.6: tqdm falls back to text bars (pip install 'ipywidgets>=7.6')"
    return Check("progress bars", ok, detail)


def environment(device: torch.device) -> list[Check]:
    """What this machine has and what ``fit`` will use on ``device`` (information only)."""
    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    if torch.version.cuda:
        versions += f", CUDA {torch.version.cuda}"
    if device.type == "cuda":
        versions += f", {torch.cuda.get_device_name(device)}"
    versions += f", MPS {'available' if mps_available() else 'not available'}"
    fit_uses = [f"Adam {'fused' if device.type == 'cuda' else 'foreach'}",
                "channels-last for convolutional models" if device.type == "cpu" else "contiguous layout",
                f"bf16 autocast {'available' if bf16_supported(device) else 'not available'} (bf16=True)"]
    try:
        check_compilable(device, True)
        fit_uses.append("torch.compile available (compile=True)")
    except ValueError:
        fit_uses.append("torch.compile not available here")
    return [Check("versions", None, versions), Check(f"fit on {device}", None, "; ".join(fit_uses))]


def run_checks(device: str | torch.device = "auto",
               recipes: list[str] | None = None) -> list[Check]:
    """Every check for ``device``; ``recipes`` defaults to all of them."""
    device = pick_device(device)
    checks = environment(device)
    jobs: list[Callable[[], Check]] = [lambda n=n: check_recipe(n, device) for n in (recipes or RECIPES)]
    jobs += [lambda: check_evaluation(device), check_progress_bars]
    for job in jobs:
        try:
            checks.append(job())
        except Exception as error:  # noqa: BLE001 - a crash is a failed check, reported in the table
            checks.append(Check(getattr(job, "__name__", "check"), False, f"{type(error).__name__}: {error}"))
    return checks


def report(checks: list[Check], seconds: float) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'INFO' if c.ok is None else 'PASS' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}"
             for c in checks]
    failed = sum(c.ok is False for c in checks)
    lines.append(f"{'all checks passed' if not failed else f'{failed} check(s) FAILED'} in {seconds:.0f} s")
    return "\n".join(lines)


def as_dict(checks: list[Check], seconds: float, device: str | torch.device) -> dict:
    """The checks as plain data (``vae-course doctor --json``): ``passed``, ``failed`` (how
    many), ``seconds``, ``device`` and ``checks``, each with ``name``, ``status`` (``PASS``,
    ``FAIL`` or ``INFO``, as in the table), ``ok`` (None for information) and ``detail``."""
    failed = sum(c.ok is False for c in checks)
    return {"device": str(device), "passed": not failed, "failed": failed, "seconds": round(seconds, 1),
            "checks": [{"name": c.name, "status": "INFO" if c.ok is None else "PASS" if c.ok else "FAIL",
                        "ok": c.ok, "detail": c.detail} for c in checks]}


def doctor(device: str | torch.device = "auto", as_json: bool = False) -> bool:
    """Run every check on ``device``, print the table (or, with ``as_json``, the JSON of
    :func:`as_dict`), return whether all passed."""
    start = time.perf_counter()
    device = pick_device(device)
    checks = run_checks(device)
    seconds = time.perf_counter() - start
    if as_json:
        import json
        print(json.dumps(as_dict(checks, seconds, device), indent=2))
    else:
        print(report(checks, seconds))
    return not any(c.ok is False for c in checks)
