"""vae_course.rng: one seed reproduces everything, on every device, and across a resume."""
import random

import numpy as np
import pytest
import torch

from vae_course.data import Batches
from vae_course.layers import reparameterize
from vae_course.models import build_model
from vae_course.rng import bernoulli, get_rng_state, preserved_rng, randn, seed_everything, set_rng_state
from vae_course.tolerances import assert_one_pass_close
from vae_course.devices import pick_device

from devices import DEVICES, each_device


def test_a_cpu_generator_draws_the_same_noise_whatever_the_target_device():
    reference = torch.randn(3, 5, generator=torch.Generator().manual_seed(4))
    for device in DEVICES + ["cpu", torch.device("cpu"), pick_device("auto")]:
        noise = randn((3, 5), generator=torch.Generator().manual_seed(4), device=device)
        assert noise.device.type == torch.device(device).type
        assert torch.equal(noise.cpu(), reference), device


@each_device
def test_the_same_seed_samples_the_same_images_on_every_device(device):
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16], latent_dim=3)
    on_cpu = model.sample(4, generator=torch.Generator().manual_seed(7))
    on_device = model.to(device).sample(4, generator=torch.Generator().manual_seed(7))
    assert on_device.device.type == device
    assert_one_pass_close(on_device, on_cpu, "samples")  # same z; only the decoder's kernels differ
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    z_cpu = reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    z_dev = reparameterize(mu.to(device), logvar.to(device), torch.Generator().manual_seed(1))
    assert torch.equal(z_dev.cpu(), z_cpu)


@each_device
def test_dynamic_binarization_is_the_same_on_every_device(device):
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    cpu = [xb for xb, _ in Batches(x, batch_size=16, binarize="dynamic", seed=3)]
    dev = [xb for xb, _ in Batches(x.to(device), batch_size=16, binarize="dynamic", seed=3)]
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, dev))
    assert set(torch.cat(cpu).unique().tolist()) == {0.0, 1.0}


def test_bernoulli_draws_ones_with_the_given_probability():
    p = torch.full((200_000,), 0.3)
    draws = bernoulli(p, torch.Generator().manual_seed(0))
    assert draws.dtype == p.dtype and abs(draws.mean().item() - 0.3) < 0.005
    assert torch.equal(draws, bernoulli(p, torch.Generator().manual_seed(0)))


def test_seed_everything_seeds_python_numpy_and_torch_and_rejects_bad_seeds():
    seed_everything(5)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(5)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    for bad in (-1, 2**64, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed must be an integer from 0"):
            seed_everything(bad)


def test_preserved_rng_leaves_every_stream_where_it_was():
    seed_everything(1)
    with preserved_rng():
        torch.manual_seed(99)
        random.seed(99)
        np.random.seed(99)
        torch.rand(10)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(1)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == after


def test_a_state_saved_on_a_gpu_restores_the_cpu_streams_and_says_the_device_stream_is_lost(capsys):
    seed_everything(2)
    state = get_rng_state("cpu")
    assert state["device"] == "cpu"
    expected = torch.rand(3)
    assert set_rng_state(state, "cpu") is True and capsys.readouterr().err == ""
    assert torch.equal(torch.rand(3), expected)
    from_gpu = {**state, "device": "cuda", "cuda": torch.zeros(16, dtype=torch.uint8)}
    assert set_rng_state(from_gpu, "cpu") is False
    assert torch.equal(torch.rand(3), expected)            # the CPU stream still continues
    assert "saved on cuda and is restored on cpu" in capsys.readouterr().err
    old = {k: v for k, v in state.items() if k != "device"}  # checkpoints written before "device"
    assert set_rng_state(old, "cpu") is True
