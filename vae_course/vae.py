"""The interface every VAE of the course shares (chapter 3): encoder, sampling layer, decoder.

Every model is an encoder (image -> ``(N, 2L)`` statistics), the sampling layer
(statistics -> ``z, mu, logvar``) and a decoder (``z`` -> logits ``(N, 1, 28, 28)``).
Decoders stop at logits because the Bernoulli loss wants logits (numerically stable);
``decode()`` applies the sigmoid for losses and pictures that want pixel values.

The models themselves: the sources' architectures in :mod:`vae_course.models`, chapter 9's
conditional VAE in :mod:`vae_course.conditional`.  This module also holds what they share:
argument checks, the MLP layer stack and the Glorot initialisation of MATLAB and Keras.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .layers import SamplingLayer, reparameterize, split_stats
from .rng import randn

IMAGE_SHAPE = (1, 28, 28)
NUM_PIXELS = 28 * 28


class VAEOutput(NamedTuple):
    """What ``model(x)`` returns: decoder logits and the latent sample with its statistics."""
    logits: torch.Tensor  # (N, 1, 28, 28), before the sigmoid
    z: torch.Tensor       # (N, L), the sample that was decoded
    mu: torch.Tensor      # (N, L)
    logvar: torch.Tensor  # (N, L), log sigma^2 (MATLAB: logSigmaSq)


def positive_int(owner: str, name: str, value) -> int:
    """``value`` if it is a positive int, else a ValueError naming the model and the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


def hidden_widths(owner: str, hidden: tuple[int, ...] | list[int] | int, example: str) -> tuple[int, ...]:
    """The hidden layer widths of an MLP model as a tuple (one int means one layer), checked."""
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not hidden:
        raise ValueError(f"{owner}: hidden must list at least one layer width, e.g. hidden={example}")
    return tuple(positive_int(owner, "hidden", h) for h in hidden)


def mlp_layers(in_features: int, hidden: tuple[int, ...], out_features: int) -> list[nn.Module]:
    """``Linear -> ReLU`` for each hidden width, then a final ``Linear`` with no activation."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        in_features = width
    return layers + [nn.Linear(in_features, out_features)]


def glorot_init_(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases on every Linear/Conv/ConvTranspose layer.

    MATLAB (``"glorot"``, ``"zeros"``) and Keras (``glorot_uniform``, ``zeros``) initialise
    this way by default, PyTorch does not (Kaiming-uniform with a=sqrt(5), nonzero biases).
    We copy the sources so their training curves can be reproduced.  The bound
    ``sqrt(6 / (fan_in + fan_out))`` is symmetric in the fans, so it does not matter that
    frameworks store transposed-convolution weights in different orders.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


class VAE(nn.Module):
    """Base class: subclasses set ``encoder``, ``sampling``, ``decoder``, ``latent_dim``, ``config``."""

    arch = ""            # registry name, set by each subclass
    conditional = False  # True for models whose methods take labels y

    encoder: nn.Sequential
    sampling: SamplingLayer
    decoder: nn.Sequential
    latent_dim: int
    config: dict

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(N, 1, 28, 28)`` -> ``(mu, logvar)``, each ``(N, L)``."""
        return split_stats(self.encoder(x))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        return reparameterize(mu, logvar, generator)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(N, L)`` -> logits ``(N, 1, 28, 28)``."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(N, L)`` -> images in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        """Encode, sample ``z`` with the sampling layer, decode.  ``y`` is ignored (see ``conditional``)."""
        z, mu, logvar = self.sampling(self.encoder(x))
        return VAEOutput(self.decode_logits(z), z, mu, logvar)

    def _prior_sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        param = next(self.parameters())  # drawn on the generator's device: see vae_course.rng.randn
        return randn((n, self.latent_dim), generator=generator, device=param.device).to(param.dtype)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I): images ``(n, 1, 28, 28)`` in [0, 1]."""
        return self.decode(self._prior_sample(n, generator))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: a deterministic reconstruction in [0, 1]."""
        mu, _ = self.encode(x)
        return self.decode(mu)
