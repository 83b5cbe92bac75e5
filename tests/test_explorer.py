"""Tests for vae_course.latent_explorer: the grid it decodes, the sprite it embeds, and (in
headless Chromium) that its sliders change the image shown in a static page."""
import base64
import io
import json
import re
import subprocess
import tempfile
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
import torch
from PIL import Image

from vae_course.latent_explorer import MAX_STEPS, static_explorer
from vae_course.models import build_model
from vae_course.tolerances import assert_one_pass_close

from conftest import chromium_binary, require


def tiny(latent_dim: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("mlp", hidden=[8], latent_dim=latent_dim)


class EchoDecoder(torch.nn.Module):
    """Decodes z into its own pixels: row 0 holds (z + 5) / 10, row 1 the class y / 10,
    so a tile says which latent point (and class) it was decoded from."""

    def __init__(self, latent_dim: int, conditional: bool = False):
        super().__init__()
        self.latent_dim = latent_dim
        self.conditional = conditional
        self.unused = torch.nn.Parameter(torch.zeros(1))  # a device to run on

    def decode(self, z, y=None):
        images = torch.zeros(len(z), 1, 28, 28)
        images[:, 0, 0, :self.latent_dim] = (z + 5) / 10
        if y is not None:
            images[:, 0, 1, 0] = y.float() / 10
        return images


def sprite(html: str) -> np.ndarray:
    """The sprite sheet embedded in the explorer's HTML, as a uint8 array."""
    encoded = re.search(r"url\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", html).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert image.mode == "L"
    return np.asarray(image)


def test_values_are_normal_quantiles():
    explorer = static_explorer(tiny(), steps=5)
    expected = [NormalDist().inv_cdf(p) for p in (0.05, 0.275, 0.5, 0.725, 0.95)]
    np.testing.assert_allclose(explorer.values, expected, atol=1e-6)
    assert explorer.values[0] == pytest.approx(-1.6449, abs=1e-4)


def test_tiles_are_the_decoded_grid():
    model = tiny()
    explorer = static_explorer(model, steps=4)
    assert explorer.tiles.shape == (4, 4, 28, 28) and explorer.tiles.dtype == np.float32
    values = explorer.values
    z = torch.tensor([[values[i], values[j], 0.0] for i in range(4) for j in range(4)])
    with torch.no_grad():
        expected = model.eval().decode(z).reshape(4, 4, 28, 28)
    assert_one_pass_close(explorer.tiles, expected, "explorer tiles")


def test_training_mode_is_restored():
    model = tiny().train()
    static_explorer(model, steps=2)
    assert model.training


def test_sprite_holds_the_tiles_row_i_column_j():
    explorer = static_explorer(tiny(), steps=3)
    sheet = sprite(explorer.html)
    assert sheet.shape == (3 * 28, 3 * 28)
    for i in range(3):
        for j in range(3):
            block = sheet[i * 28:(i + 1) * 28, j * 28:(j + 1) * 28]
            np.testing.assert_array_equal(block, np.round(explorer.tiles[i, j] * 255).astype(np.uint8))


def test_dims_move_and_the_rest_stay_at_base():
    base = [0.5, -0.25, 0.75]
    explorer = static_explorer(EchoDecoder(3), dims=(2, 0), steps=3, base=base)
    decoded_z = explorer.tiles[:, :, 0, :3] * 10 - 5    # (i, j, latent coordinate)
    values = explorer.values
    np.testing.assert_allclose(decoded_z[:, :, 2], np.repeat(values[:, None], 3, 1), atol=1e-5)
    np.testing.assert_allclose(decoded_z[:, :, 0], np.repeat(values[None, :], 3, 0), atol=1e-5)
    np.testing.assert_allclose(decoded_z[:, :, 1], -0.25, atol=1e-5)
    assert explorer.dims == (2, 0)
    assert "z<sub>3</sub>" in explorer.html and "z<sub>1</sub>" in explorer.html


def test_default_base_is_the_prior_mean():
    explorer = static_explorer(EchoDecoder(4), dims=(1, 3), steps=2)
    decoded_z = explorer.tiles[:, :, 0, :4] * 10 - 5
    np.testing.assert_allclose(decoded_z[:, :, [0, 2]], 0.0, atol=1e-6)


def test_conditional_model_decodes_the_class():
    explorer = static_explorer(EchoDecoder(2, conditional=True), steps=2, label=7)
    np.testing.assert_allclose(explorer.tiles[:, :, 1, 0], 0.7, atol=1e-6)
    torch.manual_seed(0)
    model = build_model("cvae-mlp", hidden=[8], latent_dim=2)
    three, four = (static_explorer(model, steps=2, label=c) for c in (3, 4))
    z = torch.tensor([[a, b] for a in three.values for b in three.values])
    with torch.no_grad():
        expected = model.eval().decode(z, torch.full((4,), 3)).reshape(2, 2, 28, 28)
    assert_one_pass_close(three.tiles, expected, "class-3 tiles")
    assert "class 3" in three.html
    assert not np.allclose(three.tiles, four.tiles)


def test_ids_differ_between_calls():
    model = tiny()
    first, second = static_explorer(model, steps=2), static_explorer(model, steps=2)
    ids = [re.search(r'<figure id="([^"]+)"', e.html).group(1) for e in (first, second)]
    assert ids[0] != ids[1]
    for explorer, element_id in zip((first, second), ids):
        assert f'getElementById("{element_id}")' in explorer.html
        assert explorer._repr_html_() == explorer.html


def test_html_needs_nothing_from_outside():
    html = static_explorer(tiny(), steps=2).html
    assert "http" not in html and "src=" not in html and "import" not in html
    assert "ipywidgets" not in html and html.count("<script>") == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(dims=(0, 3)), r"dims must be two different latent dimensions from 0 to 2"),
    (dict(dims=(1, 1)), r"dims must be two different"),
    (dict(dims=0), r"dims must be"),
    (dict(steps=1), r"steps must be a whole number from 2 to 41"),
    (dict(steps=MAX_STEPS + 1), r"steps.*heavy"),
    (dict(steps=2.5), r"steps must be"),
    (dict(span=(0.5, 0.5)), r"span must be two standard-normal quantiles"),
    (dict(span=(0.0, 0.9)), r"span must be"),
    (dict(scale=0), r"scale must be a whole number"),
    (dict(base=[0.0, 0.0]), r"base must be 3 finite numbers"),
    (dict(base=[0.0, float("nan"), 0.0]), r"base must be 3 finite numbers"),
    (dict(label=3), r"label=3 is only for conditional models"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        static_explorer(tiny(), **kwargs)


def test_conditional_model_needs_a_label():
    with pytest.raises(ValueError, match=r"label=3"):
        static_explorer(EchoDecoder(2, conditional=True), steps=2)


def test_latent_1_is_refused():
    with pytest.raises(ValueError, match=r"latent_dim >= 2.*latent_dim=1"):
        static_explorer(tiny(latent_dim=1))


# --- in the browser ---------------------------------------------------------------------------

# Runs before the explorers: records every JavaScript error into the page.
ERRORS = """<script>
window.vaeErrors = [];
window.addEventListener("error", function (e) { window.vaeErrors.push(String(e.message)); });
</script>"""

# Runs after them: reads what the first explorer shows, moves its sliders to (I, J) one after
# the other by the "input" events a user's drag sends, reads again after each, and writes it
# all into <html data-result>.
MOVE = """<script>
window.addEventListener("load", function () {
  var page = document.documentElement, figures = document.querySelectorAll("figure.vae-explorer");
  function state(figure) {
    var view = figure.querySelector("div.vae-explorer-view");
    var shown = Array.prototype.map.call(figure.querySelectorAll("output"),
                                         function (o) { return o.textContent; });
    return {position: getComputedStyle(view).backgroundPosition, outputs: shown};
  }
  var result = {before: state(figures[0]), other_before: state(figures[1])};
  try {
    var sliders = figures[0].querySelectorAll("input[type=range]");
    sliders[0].value = "%(i)d"; sliders[0].dispatchEvent(new Event("input"));
    result.first_moved = state(figures[0]);
    sliders[1].value = "%(j)d"; sliders[1].dispatchEvent(new Event("input"));
  } catch (e) { window.vaeErrors.push(String(e)); }
  result.after = state(figures[0]);
  result.other_after = state(figures[1]);
  var box = figures[0].querySelector("div.vae-explorer-view").getBoundingClientRect();
  result.box = [box.left, box.top, box.width, box.height];
  result.errors = window.vaeErrors;
  page.setAttribute("data-result", JSON.stringify(result));
});
</script>"""


def render(html: str, i: int, j: int, folder: Path) -> tuple[dict, np.ndarray]:
    """Open ``html`` in headless Chromium, move the first explorer's sliders to (i, j):
    (what the page recorded, a screenshot as an RGB array)."""
    exe = chromium_binary()
    require(exe is not None, "Chromium (apt-get install chromium)")
    page = folder / "explorer.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body>"
                    + ERRORS + html + MOVE % {"i": i, "j": j} + "</body></html>", encoding="utf-8")
    shot = folder / "explorer.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
             "--force-device-scale-factor=1", "--window-size=800,900",
             "--virtual-time-budget=5000", f"--screenshot={shot}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "<html" in done.stdout, f"chromium failed:\n{done.stderr[-3000:]}"
    found = re.search(r"<html[^>]*data-result=\"([^\"]*)\"", done.stdout)
    assert found, "the page never recorded a result (did its load event fire?)"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    return result, np.asarray(Image.open(shot).convert("RGB"))


def tile_at(position: str, width: int, height: int) -> tuple[int, int]:
    """(row i, column j) of the sprite tile a CSS background-position "-Xpx -Ypx" shows."""
    x, y = (float(v.removesuffix("px")) for v in position.split())
    assert x % width == 0 and y % height == 0, f"{position} is not on a tile boundary"
    return int(-y // height), int(-x // width)


def test_sliders_change_the_image_in_a_static_page(tmp_path):
    steps, scale = 5, 3
    model = tiny()
    explorer = static_explorer(model, steps=steps, scale=scale)
    other = static_explorer(model, steps=steps, scale=scale)  # a second one on the same page
    middle, target = (steps - 1) // 2, (0, steps - 1)
    result, shot = render(explorer.html + other.html, *target, tmp_path)

    assert result["errors"] == []
    size = 28 * scale
    assert tile_at(result["before"]["position"], size, size) == (middle, middle)
    assert tile_at(result["first_moved"]["position"], size, size) == (target[0], middle)
    assert tile_at(result["after"]["position"], size, size) == target
    shown = [f"{round(float(explorer.values[k]), 2) + 0.0:.2f}" for k in target]
    assert result["after"]["outputs"] == shown
    assert result["other_after"] == result["other_before"]  # ids kept the two apart

    # The screenshot shows tile (0, steps-1) itself, one image pixel per scale x scale block.
    left, top, width, height = (round(v) for v in result["box"])
    assert (width, height) == (size, size)
    seen = shot[top + scale // 2:top + size:scale, left + scale // 2:left + size:scale]
    expected = np.round(explorer.tiles[target] * 255).astype(int)
    assert np.abs(seen[..., 0].astype(int) - expected).max() <= 2
