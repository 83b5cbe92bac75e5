"""Tiny models and images for the training tests: an MLP VAE that trains in milliseconds."""
import torch

from vae_course.models import build_model


def random_images(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` uniform grey images of MNIST's shape, the same for the same seed."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def tiny_mlp(seed: int = 0):
    """A 784-32-3 MLP VAE, its weights set by ``seed``."""
    torch.manual_seed(seed)
    return build_model("mlp", hidden=[32], latent_dim=3)


def weights_equal(a, b) -> bool:
    """Bit-for-bit the same weights (a resumed run must equal an uninterrupted one)."""
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
