"""Random numbers that reproduce: seeds, saved generator states, and draws that are the same on every device.

Two rules keep the course's numbers reproducible:

- **One seed, every generator.** :func:`seed_everything` seeds Python, NumPy and torch (the CPU
  and every GPU); :func:`get_rng_state` / :func:`set_rng_state` save and restore them all, so a
  checkpoint can continue the random streams where they stopped.
- **Seeded draws happen on the generator's device.** CUDA, Apple's MPS and the CPU each have
  their own random-number algorithm, so ``torch.randn(..., device="cuda")`` with a given seed
  draws other numbers than on the CPU.  :func:`randn` and :func:`bernoulli` draw on the
  *generator's* device and move the result, so a CPU generator gives the same figure in
  Colab, on a Mac and on a laptop (the way diffusers' ``randn_tensor`` does it).
"""
from __future__ import annotations

import contextlib
import random
import sys
from typing import Iterator, Sequence

import numpy as np
import torch

from .devices import mps_available


def randn(shape: Sequence[int], *, generator: torch.Generator | None = None,
          device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device``.

    With a ``generator`` the numbers are drawn on the generator's device and moved, so a seeded
    CPU generator gives identical noise whatever ``device`` is.  Without one they are drawn
    directly on ``device`` from its global generator (the fast path used during training).
    """
    if generator is None:
        return torch.randn(tuple(shape), device=device, dtype=dtype)
    noise = torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype)
    return noise.to(device) if device is not None else noise


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary pixels: 1 with probability ``p`` (same shape, dtype and device as ``p``).

    Drawn as ``uniform < p`` on the generator's device (see :func:`randn`), so a CPU generator
    binarizes identically on every device.
    """
    if generator is None:
        return torch.bernoulli(p)
    uniform = torch.rand(p.shape, generator=generator, device=generator.device, dtype=p.dtype)
    return (uniform.to(p.device) < p).to(p.dtype)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (the CPU and every GPU) with one number."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer from 0 to 2**64 - 1, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA and MPS device


def _accelerator(device: torch.device) -> str | None:
    return device.type if device.type in ("cuda", "mps") else None


def get_rng_state(device: str | torch.device = "cpu") -> dict:
    """Every generator's state as tensors and plain Python values (checkpoint-safe).

    ``device`` names the accelerator whose stream is saved too; ``"device"`` records its kind,
    so a resume on another kind of device can say that the streams cannot continue.
    """
    device = torch.device(device)
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "device": device.type,
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, device: str | torch.device = "cpu", *, warn: bool = True) -> bool:
    """Restore what :func:`get_rng_state` saved; return whether every stream could continue.

    The Python, NumPy and CPU streams always continue.  A GPU's stream continues only on the
    same kind of device: a state saved on CUDA and restored on the CPU (or the other way
    round) cannot continue the device's draws, and ``warn`` says so on stderr.
    """
    device = torch.device(device)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    saved = state.get("device") or next((k for k in ("cuda", "mps") if k in state), "cpu")
    if saved == device.type:
        if device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], device)
        elif device.type == "mps":
            torch.mps.set_rng_state(state["mps"])
        return True
    if warn and (_accelerator(device) or saved != "cpu"):
        print(f"note: the random state was saved on {saved} and is restored on {device.type}: "
              f"the weights and the optimizer continue exactly, but the random draws on the device "
              f"follow another stream, so the numbers will differ from an uninterrupted run",
              file=sys.stderr)
    return False


@contextlib.contextmanager
def preserved_rng(device: str | torch.device = "cpu") -> Iterator[None]:
    """Run a block (evaluation, callbacks, an exercise check) without moving anyone's random streams.

    Saves and restores Python's, NumPy's, the CPU's and ``device``'s generators, and those of
    every other GPU the block might reseed (``torch.manual_seed`` reseeds them all).
    """
    state = get_rng_state(device)
    cuda_all = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    mps = torch.mps.get_rng_state() if mps_available() and torch.device(device).type != "mps" else None
    try:
        yield
    finally:
        set_rng_state(state, device, warn=False)
        if cuda_all is not None:
            torch.cuda.set_rng_state_all(cuda_all)
        if mps is not None:
            torch.mps.set_rng_state(mps)
