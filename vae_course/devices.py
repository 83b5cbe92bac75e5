"""Where training runs, and what is fast and correct there: the device, bf16, compile, determinism.

``fit`` asks these functions; ``vae-course doctor`` reports their answers for your machine.
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def convolution_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights of ``model``'s 2-D (transposed) convolutions, the layers channels_last speeds up."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def has_convolutions(model: nn.Module) -> bool:
    """Whether ``model`` has a 2-D (transposed) convolution."""
    return bool(convolution_weights(model))


def mps_available() -> bool:
    """Whether Apple's MPS backend works here (torch builds without it have no ``backends.mps``)."""
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """The device to train on: ``"auto"`` picks CUDA, then Apple's MPS, then the CPU.

    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` and ``"mps"`` force a device; asking for one that
    this machine does not have is an error rather than a silent fallback to the CPU.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    if not isinstance(preference, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu', 'cuda' or 'mps'; "
                         f"got {preference!r}")
    name = preference.strip().lower()
    has_mps = mps_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={preference!r} is not a device name; use 'auto', 'cpu', "
                         f"'cuda', 'cuda:N' or 'mps'") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={preference!r}: CUDA is not available here (no NVIDIA GPU, "
                             f"or a CPU-only torch build); use device='auto' or 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={preference!r}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
        return device
    if device.type == "mps":
        if not has_mps:
            raise ValueError(f"device={preference!r}: Apple's MPS backend is not available here; "
                             f"use device='auto' or 'cpu'")
        return device
    raise ValueError(f"device={preference!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'")


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast makes sense here: the CPU, or a GPU with bfloat16 units (not a T4)."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Make CUDA's kernels deterministic for a block (cuDNN and cuBLAS pick reproducible algorithms).

    On the CPU the course's kernels are deterministic already; on a GPU, convolutions and
    matrix products may otherwise add in a different order from run to run.
    """
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def check_compilable(device: torch.device, mode: bool | str) -> None:
    """A clear error where torch.compile's Inductor backend cannot generate code for ``device``."""
    if device.type == "cpu":
        return
    if device.type == "cuda":
        from torch.utils._triton import has_triton
        if has_triton():
            return
        why = "Inductor needs Triton for CUDA and it is not installed (pip install triton)"
    else:
        why = f"Inductor does not generate code for {device.type} in the torch versions the course supports"
    raise ValueError(f"torch_compile={mode!r} on {device}: {why}; train with torch_compile=False "
                     f"(the default) - it computes the same model")


def cpu_info() -> tuple[str, list[str]]:
    """The CPU's model name and instruction-set flags (from /proc/cpuinfo where there is one)."""
    fallback = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fallback, []
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (model.group(1).strip() if model else fallback, flags.group(1).split() if flags else [])


def describe_hardware() -> str:
    """One line naming what this process computes on: the GPU, or the CPU with its threads."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    if mps_available():
        return f"Apple GPU (MPS) on {platform.machine()}"
    return f"CPU {cpu_info()[0]}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
