"""vae_course: the package behind the *Variational autoencoders with PyTorch* course.

One module per idea of the course, in the order the book teaches them:

- ``idx``          reading MNIST's IDX files byte by byte (chapter 2)
- ``datasets``     which datasets exist and where their files are found
- ``downloads``    checking the files' MD5 sums, downloading them from mirrors
- ``data``         loading a split as tensors, binarizing, mini-batches (``Batches``)
- ``layers``       the sampling layer (reparameterization trick) and projectAndReshape (chapter 4)
- ``vae``          the interface every model shares: encoder, sampling layer, decoder (chapter 3)
- ``models``       the source architectures behind that interface, ``build_model`` (chapter 3)
- ``conditional``  the conditional VAE, told each image's class (chapter 9)
- ``losses``       KL divergences, reconstruction terms and the ELBO (chapter 5)
- ``train``        the training loop: ``train_one_epoch``, ``fit`` and ``train_recipe`` (chapter 6)
- ``schedules``    KL warm-up and the one-cycle learning rate, step by step (chapters 10, 11)
- ``history``      what a run records: ``History``, what callbacks see, the NaN error
- ``checkpoints``  saving and loading runs, safely
- ``resume``       continuing an interrupted run exactly where it stopped
- ``evaluate``     test ELBO, reconstruction errors, IWAE likelihood (chapters 7, 9)
- ``diagnostics``  posterior collapse: per-dimension KL, active units, I(x; z), rate/distortion (chapter 10)
- ``reference``    what a fully trained recipe should reach: test loss, active units, KL ranges
- ``plots``        image grids, reconstructions and error figures (chapters 1, 5, 7, 9)
- ``latent_plots`` the latent space: scatter, decoded grid, interpolation (chapter 8)
- ``latent_explorer`` sliders over two latent coordinates that work in a static page (chapter 8)
- ``monitors``     watching a run train: loss curves, sample snapshots, animation (chapters 6, 8)
- ``recipes``      the four source systems and the course's own, as named configurations
- ``pretrained_models``  the weights that ship with the package: ``vae_course.pretrained(recipe, dataset)``
- ``rng``          seeds, saved random states, and draws that are the same on every device
- ``devices``      choosing the device, and what is fast and correct there (bf16, compile)
- ``tolerances``   how closely numbers from different machines must agree
- ``doctor``       ``vae-course doctor``: checks the course computes right on your device
- ``exercises``    the automatic checks of the chapters' exercises, chapter by chapter
- ``grading``      how a check runs the learner's function, compares values and reports PASS/FAIL
- ``notebook``     helpers the chapters share: quick mode, cached trainings, run facts
- ``cli``          the ``vae-course`` command line: its arguments and how it reports errors
- ``cli_commands`` what each subcommand does (train, evaluate, diagnose, generate, data, doctor)

Three ways to train, from the most explicit to the most convenient: ``train.fit(model, x,
...)`` trains a model you built with settings you pass; ``train.train_recipe(name)`` builds a
recipe's model, loads its data and calls ``fit``; ``notebook.trained(name)`` does that once
and caches the checkpoint, so re-running a chapter does not retrain.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``vae_course.pretrained("course", "mnist")`` without importing torch on ``import vae_course``
    if name == "pretrained":
        from .pretrained_models import pretrained
        return pretrained
    raise AttributeError(f"module 'vae_course' has no attribute {name!r}")
