"""vae_course: the package behind the *Variational autoencoders with PyTorch* course.

One module per idea of the course, so a reader can find each concept in one place:

- ``idx``       reading MNIST's IDX files byte by byte (chapter 2)
- ``data``      locating, verifying and batching the datasets
- ``layers``    the sampling layer (reparameterization trick) and projectAndReshape
- ``models``    the four source architectures behind one VAE interface (chapter 3)
- ``losses``    KL divergences, reconstruction terms and the ELBO (chapter 5)
- ``train``     the training engine ``fit`` and checkpoints (chapter 6)
- ``evaluate``  test ELBO, reconstruction errors, importance-weighted likelihood (chapter 7, 9)
- ``plots``     the course's figures (chapters 7, 8)
- ``recipes``   the source systems as named configurations
"""

__version__ = "0.1.0"
