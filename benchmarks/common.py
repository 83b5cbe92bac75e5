"""What both benchmarks need: a description of the hardware, and atomic JSON files."""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

import torch

from vae_course.devices import cpu_info

RESULTS = Path(__file__).resolve().parent / "results"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")  # what decides bf16 speed


def synchronize(device: torch.device | None) -> None:
    """Wait until ``device`` has finished the work queued so far, so a clock read after it
    counts that work (a GPU runs asynchronously; nothing to wait for on the CPU)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


def hardware(device: torch.device) -> dict[str, Any]:
    """The machine a number was measured on: CPU, cores, GPU, torch, threads, date, load."""
    cpu, flags = cpu_info()
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)  # > cores: a busy machine
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def hardware_slug(info: dict[str, Any]) -> str:
    """A file-name-safe name for a machine, e.g. ``cpu-intel-xeon-processor-2cores``,
    ``cuda-nvidia-h100-80gb-hbm3``; Apple's GPU is ``mps-<cpu>-<n>cores`` (so that its results
    never land in the same file as that Mac's CPU results)."""
    if "gpu" in info:
        name = f"cuda-{info['gpu']}"
    else:
        cpu = re.sub(r"\((r|tm)\)|\s+cpu\s+@.*$", "", info["cpu"], flags=re.I)
        kind = "mps" if str(info.get("device", "")).startswith("mps") else "cpu"
        name = f"{kind}-{cpu}-{info['cpu_cores']}cores"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when there is no such file yet."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it or pass another --json path") from None
