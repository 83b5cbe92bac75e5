"""The devices this machine has, for device-parametrised tests: the CPU always, CUDA and MPS
where present, so ``pytest`` on a GPU machine or a Mac is the full check of that device."""
import pytest
import torch

from vae_course.devices import mps_available


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if mps_available():
        devices.append("mps")
    return devices


DEVICES = available_devices()
ACCELERATORS = [d for d in DEVICES if d != "cpu"]
each_device = pytest.mark.parametrize("device", DEVICES)
