"""Tests for vae_course.diagrams: the nodes the chapters name are drawn, titled, readable.

Readable means: no wider than the book's column, and no two pieces of text on top of
each other (checked on the rendered boxes, in pixels).
"""
import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from vae_course import diagrams  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def nodes(fig):
    """{gid: text} of every boxed node in the figure."""
    return {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid()}


def text_boxes(fig):
    """Pixel extents of every visible piece of text: a node's box, or a label's text."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        for text in ax.texts:
            if not text.get_text():
                continue  # an arrow drawn with annotate
            patch = text.get_bbox_patch()
            artist = patch if patch is not None else text
            boxes.append((text.get_text(), artist.get_window_extent(renderer)))
    return boxes


def assert_readable(fig):
    width, _ = fig.get_size_inches()
    assert width <= diagrams.DIAGRAM_WIDTH
    overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(
        text_boxes(fig), 2) if box_a.overlaps(box_b)]
    assert not overlapping, f"text boxes overlap: {overlapping}"


def title(fig):
    return fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()


def test_vae_computation_draws_every_step_and_both_loss_terms():
    fig = diagrams.vae_computation()
    drawn = nodes(fig)
    assert set(drawn) == {"x", "encoder", "stats", "epsilon", "z", "decoder", "x_hat",
                          "kl", "reconstruction"}
    assert "\\mu" in drawn["stats"] and "\\log\\sigma^2" in drawn["stats"]
    assert "\\mu + \\sigma \\odot \\epsilon" in drawn["z"]
    assert "KL" in drawn["kl"] and "reconstruction" in drawn["reconstruction"]
    assert "computation" in title(fig)
    assert_readable(fig)


def test_vae_computation_connects_the_nodes_in_order():
    fig = diagrams.vae_computation()
    ax = fig.axes[0]
    by_gid = {t.get_gid(): t for t in ax.texts if t.get_gid()}
    arrows = {(a.xyann, a.xy) for a in ax.texts if not a.get_text() and hasattr(a, "xy")}
    for start, end in [("x", "encoder"), ("encoder", "stats"), ("stats", "z"),
                       ("epsilon", "z"), ("z", "decoder"), ("decoder", "x_hat"),
                       ("stats", "kl"), ("x_hat", "reconstruction")]:
        assert (by_gid[start].get_position(), by_gid[end].get_position()) in arrows


def test_reparameterization_contrasts_a_plain_draw_with_the_trick():
    fig = diagrams.reparameterization()
    left, right = fig.axes
    assert "plain random draw" in left.get_title()
    assert "Reparameterized" in right.get_title()
    left_nodes = {t.get_gid() for t in left.texts if t.get_gid()}
    right_nodes = {t.get_gid() for t in right.texts if t.get_gid()}
    assert "epsilon" not in left_nodes and "epsilon" in right_nodes
    assert {"mu", "sigma", "z", "loss"} <= left_nodes & right_nodes
    assert any("no gradient" in t.get_text() for t in left.texts)
    assert any("gradients" in t.get_text() for t in right.texts)
    assert "gradients" in title(fig)
    assert_readable(fig)


def test_reparameterization_on_given_axes_draws_the_trick_only():
    fig, ax = plt.subplots()
    assert diagrams.reparameterization(ax) is fig
    assert "epsilon" in {t.get_gid() for t in ax.texts}


def test_elbo_gap_stacks_log_px_and_the_kl_gap():
    elbos, kls = [-3.5, -2.0, -1.5], [2.0, 0.5, 0.0]
    fig = diagrams.elbo_gap(["prior", "wide", "posterior"], elbos, kls)
    ax = fig.axes[0]
    top, gap = ax.containers  # the two bar series: log p(x), then the gap below it
    assert [bar.get_height() for bar in top] == pytest.approx([-1.5] * 3)
    assert [bar.get_y() + bar.get_height() for bar in gap] == pytest.approx(elbos)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["prior", "wide", "posterior"]
    assert ax.get_ylabel() == "nats" and ax.get_xlabel()
    assert "ELBO" in ax.get_title()
    assert any("gap 2.00" in t.get_text() for t in ax.texts)
    assert_readable(fig)


def test_elbo_gap_wants_one_value_of_each_per_q():
    with pytest.raises(ValueError, match="one of each per q"):
        diagrams.elbo_gap(["a", "b"], [-1.0], [0.0, 0.0])
