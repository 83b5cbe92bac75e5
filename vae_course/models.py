"""The source architectures behind one VAE interface (chapter 3), and how to build and inspect them.

Each class implements :class:`vae_course.vae.VAE` (encoder, sampling layer, decoder); the
registry ``ARCHITECTURES`` and ``build_model`` also know chapter 9's conditional VAE
(:mod:`vae_course.conditional`).

Shapes are written PyTorch-style ``(channels, height, width)``; MATLAB and TensorFlow write
``height x width x channels``, so MATLAB's ``14x14x32`` is ``(32, 14, 14)`` here.

"same" padding.  MATLAB's and TensorFlow's stride-2 "same" layers give ``ceil(n / 2)``
outputs (28 -> 14 -> 7) and their transposed versions ``n * 2`` (7 -> 14 -> 28).
``nn.Conv2d(padding=1)`` and ``nn.ConvTranspose2d(padding=1, output_padding=1)`` produce
exactly these sizes with the same parameters.  One detail differs: those frameworks put the
odd row/column of padding (or cropping) at the bottom/right, PyTorch's symmetric padding
moves the sampling grid by one pixel.  That changes nothing when training from scratch; it
would matter only when porting trained weights.  The same goes for TensorFlow's channels-last
``Flatten``/``Reshape``: a fixed permutation of the dense layer's units.

"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from .conditional import ConditionalMLPVAE
from .layers import ProjectAndReshape, SamplingLayer
from .vae import IMAGE_SHAPE, NUM_PIXELS, VAE, glorot_init_, hidden_widths, mlp_layers, positive_int


def matlab_encoder(latent_dim: int) -> nn.Sequential:
    """The encoder both MATLAB examples use: two stride-2 'same' convolutions, then the FC layer
    that outputs the concatenated statistics ``[mu; logSigmaSq]`` (2*latent_dim values)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, stride=2, padding=1),    # 28 -> 14
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),   # 14 -> 7
        nn.ReLU(),
        nn.Flatten(),                                # MATLAB's FC layer flattens implicitly
        nn.Linear(64 * 7 * 7, 2 * latent_dim),
    )


def matlab_upsampling() -> list[nn.Module]:
    """The layers both MATLAB decoders end with, from a 7x7x64 feature map to the 28x28 logits:
    transposed convolutions with MATLAB's ``Cropping="same"`` (``padding=1, output_padding=1``)."""
    return [
        nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1),  # 7 -> 14
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),  # 14 -> 28
        nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1),                     # 28 -> 28
    ]


class MatlabR2022bVAE(VAE):
    """MATLAB R2022b "Train Variational Autoencoder (VAE) to Generate Images".

    Encoder (MATLAB layer -> output, H x W x C)::

        imageInputLayer([28 28 1])                               28x28x1
        convolution2dLayer(3, 32, Padding="same", Stride=2)      14x14x32
        reluLayer
        convolution2dLayer(3, 64, Padding="same", Stride=2)      7x7x64
        reluLayer
        fullyConnectedLayer(2*numLatentChannels)                 32  (mu; logSigmaSq)
        samplingLayer                                            Z, mu, logSigmaSq: 16 each

    Decoder::

        featureInputLayer(numLatentChannels)                     16
        projectAndReshapeLayer([7 7 64])                         7x7x64
        transposedConv2dLayer(3, 64, Cropping="same", Stride=2)  14x14x64
        reluLayer
        transposedConv2dLayer(3, 32, Cropping="same", Stride=2)  28x28x32
        reluLayer
        transposedConv2dLayer(3, 1, Cropping="same")             28x28x1
        sigmoidLayer                                             (here: in decode())

    Glorot-uniform weights, zero biases (MATLAB's defaults).
    """

    arch = "matlab-2022"

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.latent_dim = positive_int(type(self).__name__, "latent_dim", latent_dim)
        self.config = {"arch": self.arch, "latent_dim": latent_dim}
        self.encoder = matlab_encoder(latent_dim)
        self.sampling = SamplingLayer()
        self.decoder = nn.Sequential(
            ProjectAndReshape(latent_dim, (64, 7, 7)),
            *matlab_upsampling(),
        )
        glorot_init_(self)


class MatlabR2019bVAE(VAE):
    """MATLAB R2019b "Train Variational Autoencoder (VAE) to Generate Images".

    Encoder: as R2022b (conv 3x3/32/s2 same, ReLU, conv 3x3/64/s2 same, ReLU,
    fullyConnectedLayer(2*latentDim)) with ``latentDim = 20``; the sampling is a function
    in the training loop rather than a layer.

    Decoder (MATLAB layer -> output, H x W x C)::

        imageInputLayer([1 1 latentDim])                         1x1x20
        transposedConv2dLayer(7, 64, Cropping="same", Stride=7)  7x7x64
        reluLayer
        transposedConv2dLayer(3, 64, Cropping="same", Stride=2)  14x14x64
        reluLayer
        transposedConv2dLayer(3, 32, Cropping="same", Stride=2)  28x28x32
        reluLayer
        transposedConv2dLayer(3, 1, Cropping="same")             28x28x1
        (sigmoid in the loss: xPred = sigmoid(decoder output); here: in decode())

    Glorot-uniform weights, zero biases (MATLAB's defaults).
    """

    arch = "matlab-2019"

    def __init__(self, latent_dim: int = 20):
        super().__init__()
        self.latent_dim = positive_int(type(self).__name__, "latent_dim", latent_dim)
        self.config = {"arch": self.arch, "latent_dim": latent_dim}
        self.encoder = matlab_encoder(latent_dim)
        self.sampling = SamplingLayer()
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (latent_dim, 1, 1)),         # z as a 1x1 image with L channels
            nn.ConvTranspose2d(latent_dim, 64, 7, stride=7),                       # 1 -> 7
            nn.ReLU(),
            *matlab_upsampling(),
        )
        glorot_init_(self)


class TensorFlowCVAE(VAE):
    """TensorFlow tutorial "Convolutional Variational Autoencoder" (``CVAE``).

    Encoder (Keras layer -> output, H x W x C)::

        InputLayer(input_shape=(28, 28, 1))                        28x28x1
        Conv2D(32, 3, strides=(2, 2), activation="relu")           13x13x32  ("valid")
        Conv2D(64, 3, strides=(2, 2), activation="relu")           6x6x64
        Flatten()                                                  2304
        Dense(latent_dim + latent_dim)                             2L  (mean, logvar)

    Decoder::

        InputLayer(input_shape=(latent_dim,))                      L
        Dense(7*7*32, activation="relu")                           1568
        Reshape((7, 7, 32))                                        7x7x32
        Conv2DTranspose(64, 3, strides=2, padding="same", relu)    14x14x64
        Conv2DTranspose(32, 3, strides=2, padding="same", relu)    28x28x32
        Conv2DTranspose(1, 3, strides=1, padding="same")           28x28x1 logits

    Glorot-uniform kernels, zero biases (Keras defaults).
    """

    arch = "tf-cvae"

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        self.latent_dim = positive_int(type(self).__name__, "latent_dim", latent_dim)
        self.config = {"arch": self.arch, "latent_dim": latent_dim}
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2),               # 28 -> 13 (valid)
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2),              # 13 -> 6 (valid)
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 6 * 6, 2 * latent_dim),
        )
        self.sampling = SamplingLayer()
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 32 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 64, 3, stride=2, padding=1, output_padding=1),  # 7 -> 14
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),  # 14 -> 28
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1),                     # 28 -> 28
        )
        glorot_init_(self)


class MLPVAE(VAE):
    """Fully connected VAE: 784 -> hidden... -> 2L, decoder the mirror image -> 784 logits.

    ``MLPVAE(hidden=(128,), latent_dim=2)``: the PyTorch MLP blog (784-128-2, sigmoid output).
    ``MLPVAE(hidden=(400,), latent_dim=20)``: pytorch/examples ``vae/main.py`` (fc1 784->400,
    fc21/fc22 400->20, fc3 20->400, fc4 400->784).  The sources' two heads for mu and logvar
    are one ``Linear(hidden, 2L)`` here: the same parameters, split by the sampling layer.

    Encoder::  Flatten -> [Linear(784|h, h) -> ReLU]... -> Linear(h_last, 2L)
    Decoder::  [Linear(L|h, h) -> ReLU]... (hidden reversed) -> Linear(h_first, 784) -> (1, 28, 28)

    Keeps PyTorch's default initialisation, as both sources do.
    """

    arch = "mlp"

    def __init__(self, hidden: tuple[int, ...] | list[int] | int = (128,), latent_dim: int = 2):
        super().__init__()
        name = type(self).__name__
        self.hidden = hidden_widths(name, hidden, "(128,)")
        self.latent_dim = positive_int(name, "latent_dim", latent_dim)
        self.config = {"arch": self.arch, "hidden": list(self.hidden), "latent_dim": latent_dim}
        self.encoder = nn.Sequential(nn.Flatten(), *mlp_layers(NUM_PIXELS, self.hidden, 2 * latent_dim))
        self.sampling = SamplingLayer()
        self.decoder = nn.Sequential(*mlp_layers(latent_dim, self.hidden[::-1], NUM_PIXELS),
                                     nn.Unflatten(1, IMAGE_SHAPE))


ARCHITECTURES: dict[str, type[VAE]] = {
    cls.arch: cls for cls in (MatlabR2022bVAE, MatlabR2019bVAE, TensorFlowCVAE, MLPVAE,
                              ConditionalMLPVAE)
}


def build_model(arch: str, **kwargs) -> VAE:
    """Build a registered architecture: ``build_model("mlp", hidden=(400,), latent_dim=20)``.

    ``build_model(**model.config)`` rebuilds a model with the same shape (fresh weights).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"build_model: unknown arch {arch!r}; choose one of "
                         f"{', '.join(sorted(ARCHITECTURES))}")
    cls = ARCHITECTURES[arch]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"build_model({arch!r}): {cls.__name__} does not take {', '.join(unknown)}; "
                        f"it accepts {', '.join(accepted)}")
    return cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters())


def _describe(module: nn.Module) -> str:
    return f"{type(module).__name__}({module.extra_repr()})"


def layer_shapes(model: VAE, x: torch.Tensor | None = None,
                 y: torch.Tensor | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """``(layer description, output shape)`` for each layer, in the order the data flows.

    Rows: the input, every encoder layer, the sampling layer (shape of ``z``; ``mu`` and
    ``logvar`` have the same shape), every decoder layer and the sigmoid that ``decode``
    applies.  Shapes leave out the batch dimension and are ``(C, H, W)`` for images.
    Found by running ``x`` (default: one blank image; labels 0 for a conditional model)
    through the model with forward hooks, so they are what PyTorch computes, not what we
    wrote down.
    """
    param = next(model.parameters())
    if x is None:
        x = torch.zeros(1, *IMAGE_SHAPE, device=param.device, dtype=param.dtype)
    if model.conditional and y is None:
        y = torch.zeros(len(x), dtype=torch.long, device=x.device)
    rows: list[tuple[str, tuple[int, ...]]] = [("input", tuple(x.shape[1:]))]

    def record(name: str):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output  # sampling: (z, mu, logvar)
            rows.append((f"{name} {_describe(module)}", tuple(out.shape[1:])))
        return hook

    named = ([(f"encoder.{n}", m) for n, m in model.encoder.named_children()]
             + [("sampling", model.sampling)]
             + [(f"decoder.{n}", m) for n, m in model.decoder.named_children()])
    handles = [m.register_forward_hook(record(name)) for name, m in named]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(x, y)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows.append(("sigmoid (in decode)", tuple(out.logits.shape[1:])))
    return rows
