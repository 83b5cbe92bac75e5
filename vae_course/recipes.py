"""The source systems the course reproduces, as named, plain configurations.

A recipe is everything needed to retrain a source's model: architecture, loss, optimizer,
batch size, epochs, data preprocessing and the partial-batch rule. Train one with
``vae_course.train.train_recipe(name)`` or ``vae-course train --recipe NAME``.

Where a source does not state a setting, the value here is the course's choice and the
recipe's ``notes`` say so. ``reported`` is what the source itself showed, in its own
units and on its own dataset (MNIST), never a number the course measured;
``reported_numbers`` holds those numbers and ``citations`` the line of the source walkthrough
(``SEED_FILES``) that states each value.
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
    lr: float = 1e-3                   # Adam learning rate (the peak of a one-cycle schedule)
    lr_schedule: str = "constant"      # "constant" or "one-cycle" (vae_course.schedules.make_lr_scheduler)
    batch_size: int = 128
    epochs: int = 30
    binarize: str = "none"             # "none", "static" (threshold 0.5) or "dynamic"
    drop_last: bool = False            # drop the last, partial mini-batch of each epoch
    shuffle: bool = True               # reshuffle every epoch (False: the file's order, always)
    num_generated: int = 64            # images the source generates from the prior at the end
    reported: str = ""                 # what the source reported (its dataset: MNIST)
    reported_numbers: dict = field(default_factory=dict)  # those numbers, in the source's units
    citations: dict = field(default_factory=dict)  # field -> "seed:line" stating it, or "course"
    notes: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {}


def _register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


# The source walkthroughs, by the short names the citations below use.  The files themselves
# (plain-text copies kept beside the project, not in the package) are listed in
# ``SEED_FILES``; ``tests/test_recipes.py`` checks every cited line against the recipe.
SEED_FILES = {
    "matlab-2022-blog": "000_2c64110a80347248.txt",   # blog walkthrough of the R2022b example (zh)
    "matlab-2022": "001_3c30406ce3f476ae.txt",        # MathWorks' R2022b page (ja)
    "tf-cvae": "002_9826f2b14c9b30bc.txt",            # TensorFlow's CVAE tutorial (zh)
    "matlab-2019": "003_6d6b5277803f7f60.txt",        # MathWorks' R2019b page (en)
    "pytorch-mlp": "004_9d91d878df942017.txt",        # PyTorch MLP VAE blog post (zh-Hant)
}

# MATLAB R2019b prints the test-set ELBO loss (0.5*SSE + KL per image, one sample of z) after
# each of its 50 epochs (seed "matlab-2019", line 111).
MATLAB_2019_TEST_LOSS = (
    28.0145, 24.8995, 23.2756, 21.151, 20.5335, 20.232, 19.9988, 19.8955, 19.7991, 19.6773,
    19.5181, 19.4532, 19.3771, 19.2893, 19.1641, 19.2175, 19.158, 19.085, 19.1169, 19.0791,
    19.0395, 18.9556, 18.9469, 18.924, 18.9124, 18.9595, 18.9256, 18.8708, 18.8602, 18.8563,
    18.8127, 18.7989, 18.8, 18.8095, 18.7601, 18.7469, 18.7049, 18.7084, 18.6858, 18.7284,
    18.6574, 18.6388, 18.7133, 18.6846, 18.6001, 18.5897, 18.6184, 18.6389, 18.5918, 18.5081,
)

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
    shuffle=True,
    num_generated=64,
    reported=("The loss of the last mini-batch after 30 epochs, 18.5185 (in its units: half the "
              "squared error summed over the pixels, plus the KL, per image), reached in 28 min 46 s; "
              "a histogram of the test images' reconstruction errors (mean squared error per image); "
              "64 generated digits in an 8x8 tile (MNIST)."),
    reported_numbers={"final_batch_loss": 18.5185, "train_minutes": 28 + 46 / 60},
    citations={
        "model_kwargs.latent_dim": "matlab-2022-blog:269",
        "epochs": "matlab-2022-blog:698", "batch_size": "matlab-2022-blog:699",
        "lr": "matlab-2022-blog:700", "drop_last": "matlab-2022-blog:721",
        "shuffle": "matlab-2022-blog:800", "reconstruction": "matlab-2022-blog:619",
        "kl": "matlab-2022-blog:621", "num_generated": "matlab-2022:223",
        "reported_numbers.final_batch_loss": "matlab-2022-blog:825",
        "reported_numbers.train_minutes": "matlab-2022-blog:821",
    },
    notes=("MATLAB's loss is `mse(Y,T) + KL`. On a dlarray, `mse` is the *half* mean squared "
           "error normalised by the number of observations, 1/(2N) sum (Y-T)^2, so per image it is "
           "0.5 * sum of squares: the same reconstruction term as R2019b, not a per-pixel mean. "
           "minibatchqueue discards the partial last batch (PartialMiniBatch='discard') and is "
           "shuffled every epoch. The reported 18.5185 is the loss variable after the last "
           "iteration: one mini-batch of 128, not an epoch mean."),
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
    shuffle=False,
    num_generated=25,
    reported=("The test-set ELBO loss (0.5*SSE + KL per image, one sample of z) printed after "
              "every one of its 50 epochs, from 28.0145 down to 18.5081, at 8.4-11 s per epoch on "
              "a GPU; reconstructions of two test digits per class; PCA scatters of the latent "
              "means and log-variances; 25 generated digits (MNIST)."),
    reported_numbers={"test_loss_per_epoch": MATLAB_2019_TEST_LOSS,
                      "final_test_loss": MATLAB_2019_TEST_LOSS[-1]},
    citations={
        "model_kwargs.latent_dim": "matlab-2019:39",
        "epochs": "matlab-2019:75", "batch_size": "matlab-2019:75", "lr": "matlab-2019:75",
        "drop_last": "matlab-2019:75", "shuffle": "matlab-2019:109",
        "reconstruction": "matlab-2019:179", "kl": "matlab-2019:179",
        "num_generated": "matlab-2019:211",
        "reported_numbers.test_loss_per_epoch": "matlab-2019:111",
        "reported_numbers.final_test_loss": "matlab-2019:111",
    },
    notes=("Loss written out as sum(0.5*(xPred-x).^2) + KL with xPred = sigmoid(decoder output), "
           "averaged over the batch. The loop takes the mini-batches in the file's order, "
           "idx = (i-1)*miniBatchSize+1 : i*miniBatchSize, the same order every epoch and never "
           "shuffled, and steps through floor(60000/512) = 117 whole batches only."),
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
    shuffle=True,
    num_generated=16,
    reported=("The test-set ELBO (nats per image, Monte Carlo with one sample, statically "
              "binarized images) after every epoch, -157.29 after epoch 10 at 5.9 s per epoch; a 4x4 "
              "grid of 16 decoded test images per epoch, made into a GIF; the 2-D latent manifold "
              "at normal quantiles (MNIST)."),
    reported_numbers={"final_test_elbo": -157.28672790527344, "seconds_per_epoch": 5.9023597240448},
    citations={
        "model_kwargs.latent_dim": "tf-cvae:200",
        "epochs": "tf-cvae:198", "batch_size": "tf-cvae:44", "lr": "tf-cvae:151",
        "binarize": "tf-cvae:39", "shuffle": "tf-cvae:50", "reconstruction": "tf-cvae:165",
        "kl": "tf-cvae:168", "num_generated": "tf-cvae:201",
        "reported_numbers.final_test_elbo": "tf-cvae:242",
        "reported_numbers.seconds_per_epoch": "tf-cvae:242",
    },
    notes=("Images statically binarized at 0.5; Bernoulli likelihood from logits; the KL term is "
           "the single-sample Monte Carlo estimate log q(z|x) - log p(z). tf.data batches of 32 "
           "keep the last partial batch."),
))

_register(Recipe(
    name="pytorch-mlp",
    title="PyTorch MLP VAE (784-128-2, MSE + 0.001 KL)",
    source="A PyTorch MLP VAE blog post (Clay, 2024); pytorch/examples' VAE is the 784-400-20 variant",
    source_url="https://github.com/pytorch/examples/tree/main/vae",
    arch="mlp",
    model_kwargs={"hidden": [128], "latent_dim": 2},
    reconstruction="mean-mse",
    kl="closed-form",
    beta=0.001,
    lr=2e-3,
    batch_size=128,
    epochs=100,
    drop_last=False,
    shuffle=True,
    num_generated=64,
    reported=("Its loss printed after every step, with no final value shown; a scatter of the "
              "2-D codes of the test images coloured by digit (MNIST)."),
    reported_numbers={},
    citations={
        "model_kwargs.hidden": "pytorch-mlp:42", "model_kwargs.latent_dim": "pytorch-mlp:40",
        "epochs": "pytorch-mlp:77", "batch_size": "pytorch-mlp:78", "lr": "pytorch-mlp:79",
        "shuffle": "pytorch-mlp:86", "drop_last": "pytorch-mlp:86",
        "reconstruction": "pytorch-mlp:90", "beta": "pytorch-mlp:103", "kl": "pytorch-mlp:101",
        "num_generated": "course",
    },
    notes=("Loss nn.MSELoss() (per-pixel mean) on the sigmoid output + 0.001 * KL (summed over the "
           "code, averaged over the batch); Adam 2e-3, batch 128, 100 epochs, a shuffling "
           "DataLoader that keeps the last partial batch. The post generates from the latent "
           "space without saying how many images; 64 (an 8x8 tile) is the course's choice."),
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

_register(Recipe(
    name="course-fast",
    title="The course's recipe for a short budget: one epoch, one-cycle learning rate",
    source="vae-course",
    source_url="",
    arch="matlab-2022",
    model_kwargs={"latent_dim": 16},
    reconstruction="bernoulli",
    kl="closed-form",
    lr=4e-3,
    lr_schedule="one-cycle",
    batch_size=64,
    epochs=1,
    drop_last=False,
    reported="",
    citations={"model_kwargs.latent_dim": "course", "reconstruction": "course", "kl": "course",
               "lr": "course", "lr_schedule": "course", "batch_size": "course", "epochs": "course",
               "drop_last": "course", "shuffle": "course", "num_generated": "course"},
    notes=("The course's choices, each for reaching a given quality in the least time "
           "(benchmarks/time_to_quality.py measures it against matlab-2022's 30 epochs): "
           "the MATLAB R2022b network and latent size 16, unchanged, because on a CPU its "
           "convolutions are the whole cost of a step and a smaller network learned worse "
           "samples; the Bernoulli likelihood on grey levels, as the `course` recipe, which gives "
           "sharper decoder means than MATLAB's 0.5*SSE; the analytic KL (no sampling noise); "
           "a single epoch, because the budget is what is being saved; within it a one-cycle "
           "schedule (torch.optim.lr_scheduler.OneCycleLR): the lr rises from 1.6e-4 to a peak "
           "of 4e-3, four times Adam's usual 1e-3, over the first quarter of the steps and then "
           "anneals to almost 0 by the last step, so the run takes large steps early and still "
           "ends settled; batch 64, half the sources' 128: an image costs the same on a CPU, and "
           "twice the steps in the one epoch learned markedly better samples (measured on MNIST, "
           "one epoch at peak lr 4e-3: Frechet distance 178 with batch 64, 229 with batch 128 and "
           "223 with batch 128 at peak 6e-3, against the target 223); the last partial batch kept and "
           "the order reshuffled as in `course`; 64 generated images as matlab-2022. All of these "
           "are the course's choice, not a source's."),
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
