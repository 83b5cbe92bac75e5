"""The conditional VAE of chapter 9: the MLP VAE told the class of each image.

Labels enter once, where training or evaluation receives them (``check_labels``); the model
turns them into one-hot vectors concatenated to the encoder's and the decoder's inputs.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import SamplingLayer, split_stats
from .vae import IMAGE_SHAPE, NUM_PIXELS, VAE, VAEOutput, hidden_widths, mlp_layers, positive_int


def check_labels(y: torch.Tensor, num_classes: int, what: str = "labels") -> None:
    """Refuse labels outside 0..num_classes-1 with a clear error.

    Reading ``y.min()`` waits for a GPU, so training and evaluation call this once where the
    labels enter, not in every forward pass (on CUDA a bad label would otherwise surface as an
    opaque device-side assert inside ``one_hot``).
    """
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"{what} must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")


class ConditionalMLPVAE(VAE):
    """Conditional VAE (chapter 9): the MLP VAE with a one-hot label concatenated to its inputs.

    Encoder::  [flatten(x) ; one_hot(y)] (784 + C) -> [Linear -> ReLU]... -> Linear(h, 2L)
    Decoder::  [z ; one_hot(y)] (L + C) -> [Linear -> ReLU]... -> Linear(h, 784) -> (1, 28, 28)

    Because the decoder is told the class, ``z`` is free to encode the *style* (slant,
    thickness); ``sample(n, y=3)`` draws n threes.  Every method takes labels ``y``
    (int64 ``(N,)``).  PyTorch's default initialisation.
    """

    arch = "cvae-mlp"
    conditional = True

    def __init__(self, hidden: tuple[int, ...] | list[int] | int = (512,), latent_dim: int = 16,
                 num_classes: int = 10):
        super().__init__()
        name = type(self).__name__
        self.hidden = hidden_widths(name, hidden, "(512,)")
        self.latent_dim = positive_int(name, "latent_dim", latent_dim)
        self.num_classes = positive_int(name, "num_classes", num_classes)
        self.config = {"arch": self.arch, "hidden": list(self.hidden), "latent_dim": latent_dim,
                       "num_classes": num_classes}
        self.encoder = nn.Sequential(*mlp_layers(NUM_PIXELS + num_classes, self.hidden, 2 * latent_dim))
        self.sampling = SamplingLayer()
        self.decoder = nn.Sequential(*mlp_layers(latent_dim + num_classes, self.hidden[::-1], NUM_PIXELS),
                                     nn.Unflatten(1, IMAGE_SHAPE))

    def one_hot(self, y: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        """Labels ``(n,)`` -> float one-hot ``(n, num_classes)``, with a clear error for bad labels."""
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} is conditional: pass the labels, e.g. model(x, y)")
        y = torch.as_tensor(y, device=device)
        if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or y.shape != (n,):
            raise ValueError(f"{name}: labels y must be integers of shape ({n},), "
                             f"got {y.dtype} {tuple(y.shape)}")
        if y.device.type == "cpu" and not torch.compiler.is_compiling():
            check_labels(y, self.num_classes, f"{name}: labels")  # free on the CPU; GPU callers check once
        dtype = next(self.parameters()).dtype
        return F.one_hot(y.long(), self.num_classes).to(dtype)

    def with_label(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``[flatten(t) ; one_hot(y)]``: the input of the encoder (t = x) or decoder (t = z)."""
        return torch.cat([t.flatten(1), self.one_hot(y, len(t), t.device)], dim=1)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return split_stats(self.encoder(self.with_label(x, y)))

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.with_label(z, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        z, mu, logvar = self.sampling(self.encoder(self.with_label(x, y)))
        return VAEOutput(self.decode_logits(z, y), z, mu, logvar)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images of class ``y``: an int (all the same class), labels ``(n,)``, or
        ``None`` to cycle through the classes 0, 1, ..., C-1, 0, 1, ..."""
        z = self._prior_sample(n, generator)
        if y is None:
            y = torch.arange(n, device=z.device) % self.num_classes
        elif isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long, device=z.device)
        else:
            check_labels(torch.as_tensor(y), self.num_classes, f"{type(self).__name__}.sample: y")
        return self.decode(z, y)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        mu, _ = self.encode(x, y)
        return self.decode(mu, y)
