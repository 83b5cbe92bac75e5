"""The source systems the course reproduces, as named, plain configurations.

A recipe is everything needed to retrain a source's model: architecture, loss, optimizer,
batch size, epochs, data preprocessing and the partial-batch rule. Train one with
``vae_course.train.train_recipe(name)`` or ``vae-course train --recipe NAME``.

Where a source does not state a setting, the value here is the course's choice and the
recipe's ``notes`` say so. ``reported`` is what the source itself showed, in its own
units and on its own dataset (MNIST), never a number the course measured.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


class UnknownRecipe(ValueError):
    """Raised for a recipe name that does not exist; the message lists the known ones."""


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    source: str
    source_url: str
    arch: str                      # key of vae_course.models.ARCHITECTURES
    model_kwargs: dict = field(default_factory=dict)
    reconstruction: str = "half-sse"   # key of vae_course.losses.RECONSTRUCTION
    kl: str = "closed-form"            # "closed-form" or "monte-carlo"
    beta: float = 1.0                  # weight of the KL term
    sigma: float | None = None         # only for reconstruction="gaussian"
    lr: float = 1e-3                   # Adam learning rate
    batch_size: int = 128
    epochs: int = 30
    binarize: str = "none"             # "none", "static" (threshold 0.5) or "dynamic"
    drop_last: bool = False            # drop the last, partial mini-batch of each epoch
    reported: str = ""                 # what the source reported (its dataset: MNIST)
    notes: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {}


def _register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


_register(Recipe(
    name="matlab-2022",
    title="MATLAB R2022b: Train Variational Autoencoder (VAE) to Generate Images",
    source="MathWorks Deep Learning Toolbox example, release R2022b",
    source_url="https://www.mathworks.com/help/deeplearning/ug/train-a-variational-autoencoder-vae-to-generate-images.html",
    arch="matlab-2022",
    model_kwargs={"latent_dim": 16},
    reconstruction="half-sse",
    kl="closed-form",
    lr=1e-3,
    batch_size=128,
    epochs=30,
    drop_last=True,
    reported=("A 5x5 tile of generated digits; the custom training loop took 28 min 46 s "
              "for 30 epochs on MNIST (MATLAB's live training-progress plot)."),
    notes=("MATLAB's loss is `mse(Y,T) + KL`. On a dlarray, `mse` is the *half* mean squared "
           "error normalised by the number of observations, 1/(2N) sum (Y-T)^2, so per image it is "
           "0.5 * sum of squares: the same reconstruction term as R2019b, not a per-pixel mean. "
           "minibatchqueue discards the partial last batch (PartialMiniBatch='discard')."),
))

_register(Recipe(
    name="matlab-2019",
    title="MATLAB R2019b: Train Variational Autoencoder (VAE) to Generate Images",
    source="MathWorks Deep Learning Toolbox example, release R2019b",
    source_url="https://www.mathworks.com/help/releases/R2019b/deeplearning/examples/train-a-variational-autoencoder-vae-to-generate-images.html",
    arch="matlab-2019",
    model_kwargs={"latent_dim": 20},
    reconstruction="half-sse",
    kl="closed-form",
    lr=1e-3,
    batch_size=512,
    epochs=50,
    drop_last=True,
    reported=("The test-set ELBO loss printed after every epoch, and a tile of generated digits "
              "(MNIST)."),
    notes=("Loss written out as sum(0.5*(xPred-x).^2) + KL with xPred = sigmoid(decoder output), "
           "averaged over the batch. The loop steps through whole mini-batches only."),
))

_register(Recipe(
    name="tf-cvae",
    title="TensorFlow tutorial: Convolutional Variational Autoencoder",
    source="TensorFlow tutorials, generative/cvae",
    source_url="https://www.tensorflow.org/tutorials/generative/cvae",
    arch="tf-cvae",
    model_kwargs={"latent_dim": 2},
    reconstruction="bernoulli",
    kl="monte-carlo",
    lr=1e-4,
    batch_size=32,
    epochs=10,
    binarize="static",
    drop_last=False,
    reported=("The test-set ELBO (nats per image, Monte Carlo, one sample) printed after every "
              "epoch, a 4x4 grid of samples per epoch as a GIF, and the 2-D latent manifold (MNIST)."),
    notes=("Images statically binarized at 0.5; Bernoulli likelihood from logits; the KL term is "
           "the single-sample Monte Carlo estimate log q(z|x) - log p(z)."),
))

_register(Recipe(
    name="pytorch-mlp",
    title="PyTorch MLP VAE (784-128-2, MSE + 0.001 KL)",
    source="A widely copied PyTorch blog VAE; pytorch/examples' VAE is the 784-400-20 variant",
    source_url="https://github.com/pytorch/examples/tree/main/vae",
    arch="mlp",
    model_kwargs={"hidden": [128], "latent_dim": 2},
    reconstruction="mean-mse",
    kl="closed-form",
    beta=0.001,
    lr=1e-3,
    batch_size=128,
    epochs=20,
    drop_last=False,
    reported="A scatter of the 2-D latent means coloured by digit, and decoded samples (MNIST).",
    notes=("Loss nn.MSELoss() (per-pixel mean) + 0.001 * KL. The blog does not fix the learning "
           "rate, batch size or epochs; Adam 1e-3, batch 128 and 20 epochs are the course's choice."),
))

_register(Recipe(
    name="course",
    title="The course's recommended recipe",
    source="vae-course",
    source_url="",
    arch="matlab-2022",
    model_kwargs={"latent_dim": 16},
    reconstruction="bernoulli",
    kl="closed-form",
    lr=1e-3,
    batch_size=128,
    epochs=30,
    drop_last=False,
    reported="",
    notes=("The MATLAB R2022b network with a Bernoulli (cross-entropy) likelihood on grey levels "
           "and the analytic KL: sharper reconstructions than the Gaussian sigma=1 implied by "
           "0.5*SSE, at the same training budget. See the benchmarks for the comparison."),
))

SOURCE_RECIPES = ("matlab-2022", "matlab-2019", "tf-cvae", "pytorch-mlp")


def get_recipe(name: str | Recipe) -> Recipe:
    """Return the recipe called ``name`` (a Recipe passes through unchanged)."""
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        known = ", ".join(RECIPES)
        raise UnknownRecipe(f"unknown recipe {name!r}; known recipes: {known}") from None
