"""Tests for vae_course.plots: grid maths, labelled figures, files written, callbacks.

A tiny stand-in VAE (defined here) keeps these tests independent of models.py.
"""
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from vae_course import latent_plots, monitors, plots  # noqa: E402

CLASS_NAMES = tuple(f"class {c}" for c in range(10))


class TinyVAE(torch.nn.Module):
    """Just the interface plots.py relies on: latent_dim, encode, decode, reconstruct."""

    def __init__(self, latent_dim: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.latent_dim = latent_dim
        self.encoder = torch.nn.Linear(28 * 28, 2 * latent_dim)
        self.decoder = torch.nn.Linear(latent_dim, 28 * 28)

    def encode(self, x):
        stats = self.encoder(x.flatten(1))
        return stats[:, :self.latent_dim], stats[:, self.latent_dim:]

    def decode(self, z):
        return torch.sigmoid(self.decoder(z)).view(-1, 1, 28, 28)

    def reconstruct(self, x):
        return self.decode(self.encode(x)[0])


class TinyConditionalVAE(TinyVAE):
    """Like conditional.ConditionalMLPVAE: encode/decode take class labels y."""

    conditional = True
    num_classes = 3

    def encode(self, x, y=None):
        assert y is not None and y.shape == (len(x),)
        return super().encode(x)

    def decode(self, z, y=None):
        assert y is not None and y.shape == (len(z),)
        return super().decode(z) * (1 + y.view(-1, 1, 1, 1)) / self.num_classes


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def images():
    return torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def labelled(fig, grid=False):
    """Every figure has a title and labelled axes (suptitle/supxlabel may stand in for grids)."""
    ax = fig.axes[0]
    title = ax.get_title() or (fig._suptitle.get_text() if fig._suptitle else "")
    xlabel = ax.get_xlabel() or (fig._supxlabel.get_text() if fig._supxlabel else "")
    assert title.strip(), "figure has no title"
    assert xlabel.strip(), "figure has no x label"
    if not grid:
        assert ax.get_ylabel().strip(), "figure has no y label"
    return ax


# ----------------------------------------------------------------------------- tile

def test_tile_shape_and_padding_math():
    stack = np.zeros((10, 1, 28, 28), dtype=np.float32)
    grid = plots.tile(stack)  # ncols = ceil(sqrt(10)) = 4 -> 3 rows
    assert grid.shape == (3 * 29 + 1, 4 * 29 + 1)
    assert plots.tile(stack, ncols=5, padding=2).shape == (2 * 30 + 2, 5 * 30 + 2)
    assert plots.tile(stack, ncols=10, padding=0).shape == (28, 280)


def test_tile_places_image_k_in_its_block():
    stack = np.stack([np.full((28, 28), k / 10, dtype=np.float32) for k in range(7)])
    grid = plots.tile(stack, ncols=3, padding=1, pad_value=1.0)
    for k in range(7):
        top, left = 1 + (k // 3) * 29, 1 + (k % 3) * 29
        np.testing.assert_allclose(grid[top:top + 28, left:left + 28], k / 10)
    # padding lines and the two unused cells of the last row are pad_value
    assert np.all(grid[0] == 1.0) and np.all(grid[:, 29] == 1.0)
    assert np.all(grid[1 + 2 * 29:, 1 + 29:] == 1.0)


def test_tile_accepts_layouts_tensors_and_uint8():
    t = torch.rand(4, 1, 5, 5, requires_grad=True)
    a = plots.tile(t)
    np.testing.assert_allclose(plots.tile(t.detach().numpy()[:, 0]), a)  # (N, H, W)
    np.testing.assert_allclose(plots.tile(t.detach().numpy().transpose(0, 2, 3, 1)), a)  # NHWC
    u8 = np.full((1, 3, 3), 255, dtype=np.uint8)
    assert plots.tile(u8, padding=0).max() == 1.0
    with pytest.raises(ValueError, match="grayscale"):
        plots.tile(np.zeros((2, 3, 5, 5)))


# ----------------------------------------------------------------------------- figures

def test_image_tile_is_labelled(images):
    fig = plots.image_tile(images, title="Some digits")
    ax = labelled(fig, grid=True)
    assert ax.get_title() == "Some digits"
    assert ax.images[0].get_array().shape == plots.tile(images).shape


def test_image_tile_draws_into_given_axes(images):
    fig, (left, right) = plt.subplots(1, 2)
    assert plots.image_tile(images, ax=right) is fig
    assert right.images and not left.images


def test_reconstructions_by_class_rows_and_columns(images):
    labels = torch.arange(20) % 10
    model = TinyVAE()
    fig = plots.reconstructions_by_class(images, model.reconstruct(images), labels,
                                         CLASS_NAMES, per_class=2)
    ax = labelled(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASS_NAMES)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "reconstruction"] * 2
    # class 3's first original (index 3) sits in row 3, column 0
    grid = ax.images[0].get_array()
    np.testing.assert_allclose(grid[1 + 3 * 29:1 + 3 * 29 + 28, 1:29], images[3, 0].numpy(),
                               atol=1e-6)


def test_reconstructions_by_class_marks_missing_class(images):
    labels = torch.zeros(20, dtype=torch.long)
    fig = plots.reconstructions_by_class(images, images, labels, ("zero", "one"))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["zero", "one (none)"]


def test_error_histogram_marks_median_and_mean():
    errors = torch.tensor([0.01, 0.02, 0.03, 0.5])
    fig = plots.error_histogram(errors)
    ax = labelled(fig)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("median 0.025") for t in legend)
    assert any(t.startswith("mean 0.14") for t in legend)


def test_latent_scatter_2d_uses_z_axes():
    means = np.random.default_rng(0).normal(size=(100, 2))
    labels = np.arange(100) % 10
    fig = latent_plots.latent_scatter(means, labels, CLASS_NAMES)
    ax = labelled(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z₁", "z₂")
    assert len(ax.get_legend().get_texts()) == 10


def test_latent_scatter_uses_pca_for_latent_4():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(200, 4)) * np.array([5.0, 2.0, 0.1, 0.1])  # variance in dims 0, 1
    fig = latent_plots.latent_scatter(torch.tensor(means), torch.arange(200) % 10, CLASS_NAMES)
    ax = labelled(fig)
    assert ax.get_xlabel().startswith("PC 1") and "% var" in ax.get_xlabel()
    assert ax.get_ylabel().startswith("PC 2")
    first = int(ax.get_xlabel().split("(")[1].split("%")[0])
    assert 80 <= first <= 90  # 25 / (25 + 4 + 0.02) ≈ 86 %


def test_latent_manifold_decodes_normal_quantiles():
    model = TinyVAE(latent_dim=2)
    fig = latent_plots.latent_manifold(model, n=5)
    ax = labelled(fig)
    assert ax.images[0].get_array().shape == (5 * 28, 5 * 28)
    ticks = [float(t.get_text()) for t in ax.get_xticklabels()]
    assert ticks[0] == pytest.approx(-1.645, abs=0.01) and ticks[2] == pytest.approx(0.0)
    assert model.training  # train mode restored


def test_latent_manifold_rejects_latent_4():
    with pytest.raises(ValueError, match="latent_dim=4.*tf-cvae or pytorch-mlp"):
        latent_plots.latent_manifold(TinyVAE(latent_dim=4))


def test_interpolation_endpoints_are_decoded_means(images):
    model = TinyVAE(latent_dim=3)
    fig = latent_plots.interpolation_strip(model, images[0], images[1], steps=6, show_inputs=False)
    labelled(fig, grid=True)
    assert [ax.get_title() for ax in fig.axes] == [f"α={a:.2f}" for a in np.linspace(0, 1, 6)]
    with torch.no_grad():
        mu_a, _ = model.encode(images[:1])
        mu_b, _ = model.encode(images[1:2])
        expected_a, expected_b = model.decode(mu_a)[0, 0], model.decode(mu_b)[0, 0]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), expected_a.numpy(), atol=1e-6)
    np.testing.assert_allclose(fig.axes[-1].images[0].get_array(), expected_b.numpy(), atol=1e-6)


def test_interpolation_strip_frames_with_inputs(images):
    fig = latent_plots.interpolation_strip(TinyVAE(), images[0], images[1], steps=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "input A" and titles[-1] == "input B" and len(titles) == 6


def make_history(epochs=3, per_epoch=40):
    losses = list(200 * np.exp(-np.arange(epochs * per_epoch) / 30) + 100)
    return SimpleNamespace(
        iteration_loss=losses,
        epochs=[dict(epoch=e + 1, train_loss=150.0 - e, test_loss=155.0 - e, seconds=1.0)
                for e in range(epochs)])


def test_loss_curve_labels_and_test_points():
    fig = monitors.loss_curve(make_history(), log=True)
    ax = labelled(fig)
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "loss (nats/image)"
    assert ax.get_yscale() == "log"
    test_line = [line for line in ax.get_lines() if line.get_label().startswith("test")][0]
    np.testing.assert_allclose(test_line.get_xdata(), [40, 80, 120])
    np.testing.assert_allclose(test_line.get_ydata(), [155, 154, 153])


def test_loss_curve_uses_given_iterations_per_epoch_mid_epoch():
    history = make_history(epochs=2, per_epoch=40)
    history.iteration_loss += [100.0] * 10  # a third epoch under way
    ax = monitors.loss_curve(history, iterations_per_epoch=40).axes[0]
    test_line = [line for line in ax.get_lines() if line.get_label().startswith("test")][0]
    np.testing.assert_allclose(test_line.get_xdata(), [40, 80])


def test_loss_curve_accepts_dict_and_epoch_only_history():
    history = make_history()
    history = {"iteration_loss": [], "epochs": history.epochs}
    ax = labelled(monitors.loss_curve(history))
    assert ax.get_xlabel() == "epoch"


# ----------------------------------------------------------------------------- files

def test_save_image_grid_writes_png_of_expected_size(tmp_path, images):
    path = plots.save_image_grid(images[:16], tmp_path / "grid.png", scale=3)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.size == (3 * (4 * 29 + 1), 3 * (4 * 29 + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temp file left behind


def test_save_image_grid_names_bad_path(tmp_path, images):
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        plots.save_image_grid(images, tmp_path / "no-such-folder" / "grid.png")
    with pytest.raises(ValueError, match="grid.jpg"):
        plots.save_image_grid(images, tmp_path / "grid.jpg")


def test_save_training_animation_writes_gif_frames(tmp_path):
    frames = [np.full((20, 30), k * 60, dtype=np.uint8) for k in range(4)]
    path = monitors.save_training_animation(frames, tmp_path / "samples.gif", fps=4)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4
    assert [p.name for p in tmp_path.iterdir()] == ["samples.gif"]


# ----------------------------------------------------------------------------- callbacks

def test_live_loss_plot_outside_notebook_records_data():
    live = monitors.LiveLossPlot(every=2)
    assert not live.live
    history = SimpleNamespace(iteration_loss=[], epochs=[])

    def state(i, loss):
        return SimpleNamespace(history=history, iteration=i, epoch=1 + (i - 1) // 5, loss=loss,
                               iterations_per_epoch=5)

    for i in range(1, 8):  # one epoch of 5 iterations, then 2 into the next
        history.iteration_loss.append(10.0 / i)
        live.on_iteration(state(i, torch.tensor(10.0 / i)))
        if i == 5:
            history.epochs.append(dict(epoch=1, train_loss=4.0, test_loss=5.0, seconds=0.1))
            live.on_epoch_end(state(i, 4.0))  # the epoch mean is not recorded as an iteration
    assert live.losses == pytest.approx([10.0 / i for i in range(1, 8)])
    assert live.iterations == list(range(1, 8))
    ax = labelled(live.figure)
    test_line = [line for line in ax.get_lines() if line.get_label().startswith("test")][0]
    np.testing.assert_allclose(test_line.get_xdata(), [5])  # at the epoch's end, not 7


def test_sample_snapshots_fixed_z_and_train_mode(tmp_path):
    model = TinyVAE(latent_dim=2)
    snapshots = monitors.SampleSnapshots(n=4, seed=0)
    for epoch in (1, 2):
        snapshots.on_epoch_end(SimpleNamespace(model=model, epoch=epoch, history=None))
    assert model.training
    assert len(snapshots.frames) == 2 and snapshots.frames[0].dtype == np.uint8
    assert snapshots.frames[0].shape == (2 * 29 + 1, 2 * 29 + 1)
    np.testing.assert_array_equal(snapshots.frames[0], snapshots.frames[1])  # same z, same model
    expected = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(snapshots.z, expected)
    assert snapshots.titles == ["epoch 1", "epoch 2"]
    path = monitors.save_training_animation(snapshots.frames, tmp_path / "a.gif",
                                         titles=snapshots.titles)
    with Image.open(path) as gif:
        assert gif.n_frames == 2  # the titles differ, so Pillow keeps both frames


def test_conditional_models_need_a_label(images):
    model = TinyConditionalVAE(latent_dim=2)
    with pytest.raises(ValueError, match="label=3"):
        latent_plots.latent_manifold(model, n=3)
    fig = latent_plots.latent_manifold(model, n=3, label=2)
    assert fig.axes[0].images[0].get_array().max() <= 1.0
    latent_plots.interpolation_strip(model, images[0], images[1], steps=3, label=1)
    with pytest.raises(ValueError, match="only for conditional"):
        latent_plots.latent_manifold(TinyVAE(), n=3, label=1)
    snapshots = monitors.SampleSnapshots(n=6)  # samples cycle through the classes
    snapshots.on_epoch_end(SimpleNamespace(model=model, epoch=1, history=None))
    assert len(snapshots.frames) == 1


def test_labelled_grid_puts_each_label_at_its_images_centre():
    images = torch.zeros(6, 1, 28, 28)
    images[4] = 1.0  # row 1, column 1
    fig = plots.labelled_grid(images, ["model A", "model B"], ["0", "1", "2"], title="t",
                              xlabel="class", ylabel="model")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["model A", "model B"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    grid = ax.images[0].get_array()
    row, col = ax.get_yticks()[1], ax.get_xticks()[1]
    assert grid[int(row), int(col)] == 1.0  # the tick sits on the white image
    assert grid[int(ax.get_yticks()[0]), int(col)] == 0.0
    assert ax.get_title() == "t" and ax.get_xlabel() == "class" and ax.get_ylabel() == "model"
    with pytest.raises(ValueError, match="6 images for 2 rows x 2 columns"):
        plots.labelled_grid(images, ["a", "b"], ["0", "1"], title="t")
    plt.close("all")
