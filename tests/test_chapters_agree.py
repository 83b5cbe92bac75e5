"""The book and the package share one implementation: every function a chapter teaches
(its solution, as the notebook defines it) gives what the package's version gives, on the
same inputs. Edit one without the other and this fails.

The chapter's definition is taken from the notebook itself (the last cell defining the name,
i.e. the solution after the exercise stub), so nothing here is a copy that could drift.
"""
import ast
import json
import math
import struct
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from vae_course import evaluate, idx, latent_plots, layers, losses, plots
from vae_course.idx import write_idx
from vae_course.models import build_model
from vae_course.tolerances import assert_one_pass_close

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def chapter_function(notebook: str, name: str):
    """The last definition of ``name`` in a chapter's code cells, executed on its own."""
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
    found = None
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError:  # cells with IPython magics define nothing taught here
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                found = ast.get_source_segment(source, node)
    assert found is not None, f"{notebook} no longer defines {name}: update this test with the chapter"
    namespace = {"math": math, "struct": struct, "np": np, "torch": torch, "nn": nn, "NormalDist": NormalDist}
    exec(compile(found, f"{notebook}:{name}", "exec"), namespace)
    return namespace[name]


def _gaussians(seed=0, shape=(6, 4)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) for _ in range(4)]


def test_chapter_2_reads_idx_as_the_package_does(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "x.idx", images)
    data = (tmp_path / "x.idx").read_bytes()
    magic, sizes = chapter_function("02_idx_format.ipynb", "parse_header")(data)
    header = idx.parse_idx_header(data)
    assert sizes == list(header.shape) and magic == 0x0803
    np.testing.assert_array_equal(chapter_function("02_idx_format.ipynb", "read_images")(data),
                                  idx.read_idx(tmp_path / "x.idx").astype(np.float32) / 255)


def test_chapter_3_project_and_reshape_and_layer_sizes_match_torch():
    mine = chapter_function("03_autoencoder_to_vae.ipynb", "MyProjectAndReshape")(16, (64, 7, 7))
    package = layers.ProjectAndReshape(16, (64, 7, 7))
    package.load_state_dict(mine.state_dict())  # same parameter names and shapes
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mine(z), package(z))
    conv = chapter_function("03_autoencoder_to_vae.ipynb", "conv_output_size")
    tconv = chapter_function("03_autoencoder_to_vae.ipynb", "transposed_conv_output_size")
    for size, k, s, p in [(28, 3, 2, 1), (14, 3, 2, 1), (9, 5, 3, 2), (7, 4, 1, 0)]:
        x = torch.zeros(1, 1, size, size)
        assert conv(size, k, s, p) == nn.Conv2d(1, 1, k, stride=s, padding=p)(x).shape[-1]
        for op in range(s):
            out = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op)(x).shape[-1]
            assert tconv(size, k, s, p, op) == out


def test_chapter_5_kl_and_log_density_are_the_packages():
    mu, logvar, mean, logvar2 = _gaussians()
    for name in ("kl_closed_form", "my_kl_normal"):
        assert_one_pass_close(chapter_function("05_elbo.ipynb", name)(mu, logvar), losses.kl_normal(mu, logvar), name)
    for name in ("log_normal_pdf", "my_log_normal_pdf"):
        assert_one_pass_close(chapter_function("05_elbo.ipynb", name)(mu, mean, logvar2),
                              losses.log_normal_pdf(mu, mean, logvar2), name)
    kl_two = chapter_function("05_elbo.ipynb", "kl_diag_gaussians")
    zeros = torch.zeros_like(mu)
    assert_one_pass_close(kl_two(mu, logvar, zeros, zeros), losses.kl_normal(mu, logvar), "KL to N(0, I)")


def test_chapter_7_reconstruction_mse_is_evaluate_reconstruction_errors():
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16], latent_dim=2).eval()
    x = torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    mine = chapter_function("07_testing.ipynb", "reconstruction_mse")(model, x)
    assert_one_pass_close(mine, evaluate.reconstruction_errors(model, x), "per-image MSE")


def test_chapter_8_interpolation_and_grid_are_the_packages():
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16], latent_dim=2).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    interpolate = chapter_function("08_generating.ipynb", "interpolate")
    with torch.no_grad():
        mu = model.encode(x)[0]
        mine = model.decode(interpolate(mu[0], mu[1], 7))
    _, package = latent_plots._interpolate(model, x[0], x[1], 7)
    assert_one_pass_close(mine.squeeze(1), package, "decoded interpolation")
    grid = chapter_function("08_generating.ipynb", "normal_grid")(9)
    figure = latent_plots.latent_manifold(model, n=9)
    labels = [float(t.get_text()) for t in figure.axes[0].get_xticklabels()]
    np.testing.assert_allclose(np.round(grid, 2), labels)
    plots.plt.close("all")


def test_chapter_9_logmeanexp_is_what_the_iwae_bound_computes():
    a = torch.randn(5, 300, generator=torch.Generator().manual_seed(3)) * 50 - 400  # exp underflows
    mine = chapter_function("09_beyond.ipynb", "logmeanexp")(a)
    assert_one_pass_close(mine, torch.logsumexp(a, dim=-1) - math.log(a.shape[-1]), "logmeanexp")


def test_chapter_11_gaussian_nll_is_the_packages():
    g = torch.Generator().manual_seed(4)
    x, x_hat = torch.rand(5, 1, 28, 28, generator=g), torch.rand(5, 1, 28, 28, generator=g)
    mine = chapter_function("11_course_recipe.ipynb", "gaussian_nll")
    for sigma in (0.1, 0.5, 1.0, 3.0):
        assert_one_pass_close(mine(x_hat, x, sigma), losses.gaussian_nll(x_hat, x, sigma),
                              f"Gaussian NLL, sigma={sigma}")
    # at sigma = 1 it is the half-SSE loss plus the constant D/2 log(2 pi) of chapter 11
    assert_one_pass_close(mine(x_hat, x, 1.0), losses.half_sse(x_hat, x) + 784 / 2 * math.log(2 * math.pi),
                          "sigma = 1")
