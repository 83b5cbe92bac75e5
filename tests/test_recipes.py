"""The recipes say what the sources did; these tests pin the facts the issue lists and check
every cited line of the source walkthroughs (``../shared/seeds``) against the recipe."""
import dataclasses
import os
import re
from pathlib import Path

import pytest

from conftest import require
from vae_course import losses, models
from vae_course.recipes import (MATLAB_2019_TEST_LOSS, RECIPES, SEED_FILES, SOURCE_RECIPES, Recipe,
                                UnknownRecipe, get_recipe)

SEEDS = Path(os.environ.get("VAE_COURSE_SEEDS", Path(__file__).resolve().parents[2] / "shared" / "seeds"))
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def test_the_four_sources_have_the_agreed_names():
    assert set(SOURCE_RECIPES) == {"matlab-2022", "matlab-2019", "tf-cvae", "pytorch-mlp"}
    assert set(SOURCE_RECIPES) <= set(RECIPES)


@pytest.mark.parametrize("name, latent, batch, epochs, recon, kl, beta, binarize", [
    ("matlab-2022", 16, 128, 30, "half-sse", "closed-form", 1.0, "none"),
    ("matlab-2019", 20, 512, 50, "half-sse", "closed-form", 1.0, "none"),
    ("tf-cvae", 2, 32, 10, "bernoulli", "monte-carlo", 1.0, "static"),
    ("pytorch-mlp", 2, 128, 100, "mean-mse", "closed-form", 0.001, "none"),
])
def test_source_settings(name, latent, batch, epochs, recon, kl, beta, binarize):
    r = get_recipe(name)
    assert r.model_kwargs["latent_dim"] == latent
    assert (r.batch_size, r.epochs, r.reconstruction, r.kl, r.beta, r.binarize) == (
        batch, epochs, recon, kl, beta, binarize)


def test_mlp_recipe_is_784_128_2():
    model = models.build_model(get_recipe("pytorch-mlp").arch, **get_recipe("pytorch-mlp").model_kwargs)
    linears = [m for m in model.encoder.modules() if m.__class__.__name__ == "Linear"]
    assert linears[0].in_features == 784 and linears[0].out_features == 128
    assert model.latent_dim == 2


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_builds_and_names_valid_losses(name):
    r = get_recipe(name)
    model = models.build_model(r.arch, **r.model_kwargs)
    assert model.latent_dim == r.model_kwargs["latent_dim"]
    assert r.reconstruction in losses.RECONSTRUCTION
    assert r.kl in ("closed-form", "monte-carlo")
    assert r.binarize in ("none", "static", "dynamic")
    assert r.title and r.notes


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(UnknownRecipe) as info:
        get_recipe("matlab-2023")
    for name in SOURCE_RECIPES:
        assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_recipe_passes_through_and_is_immutable():
    r = get_recipe("tf-cvae")
    assert get_recipe(r) is r
    assert isinstance(r, Recipe)
    with pytest.raises(dataclasses.FrozenInstanceError, match="epochs"):
        r.epochs = 3
    assert r.to_dict()["name"] == "tf-cvae"


@pytest.mark.parametrize("name, lr, drop_last, shuffle, num_generated", [
    ("matlab-2022", 1e-3, True, True, 64),
    ("matlab-2019", 1e-3, True, False, 25),  # the file's order, every epoch
    ("tf-cvae", 1e-4, False, True, 16),
    ("pytorch-mlp", 2e-3, False, True, 64),
])
def test_source_schedules(name, lr, drop_last, shuffle, num_generated):
    r = get_recipe(name)
    assert (r.lr, r.drop_last, r.shuffle, r.num_generated) == (lr, drop_last, shuffle, num_generated)


def test_matlab_2019_reports_one_test_loss_per_epoch():
    r = get_recipe("matlab-2019")
    assert len(MATLAB_2019_TEST_LOSS) == r.epochs
    assert r.reported_numbers["final_test_loss"] == MATLAB_2019_TEST_LOSS[-1]


def _field(recipe: Recipe, path: str):
    value = recipe
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def _numbers(value) -> list[float]:
    if isinstance(value, bool) or isinstance(value, str):
        return []
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return [float(value)]


def _seed_line(citation: str) -> str:
    source, line = citation.rsplit(":", 1)
    path = SEEDS / SEED_FILES[source]
    if not path.exists():
        require(None, f"the source walkthroughs ({SEEDS}; set VAE_COURSE_SEEDS)")
    return path.read_text(encoding="utf-8").splitlines()[int(line) - 1]


@pytest.mark.parametrize("name", SOURCE_RECIPES)
def test_every_training_setting_of_a_source_is_cited(name):
    cited = set(get_recipe(name).citations)
    for key in ("epochs", "batch_size", "lr", "reconstruction", "kl", "shuffle", "num_generated",
                "model_kwargs.latent_dim"):
        assert key in cited, f"{name}: no citation for {key}"
    assert set(get_recipe(name).reported_numbers) <= {c.split(".", 1)[1] for c in cited
                                                      if c.startswith("reported_numbers.")}


@pytest.mark.parametrize("name", SOURCE_RECIPES)
def test_cited_lines_state_the_recipe_values(name):
    """Each numeric value appears among the numbers on the line its citation names
    (a minute count like 28 min 46 s is checked by its parts)."""
    recipe = get_recipe(name)
    for path, citation in recipe.citations.items():
        if citation == "course":  # the source leaves it open; the notes must say so
            assert "course's choice" in recipe.notes, f"{name}.{path}: a course choice the notes do not explain"
            continue
        line = _seed_line(citation)
        assert line.strip(), f"{name}.{path}: {citation} is an empty line"
        on_line = [float(n) for n in NUMBER.findall(line)]
        value = _field(recipe, path)
        if path.endswith("train_minutes"):
            value = divmod(round(value * 60), 60)
        for number in _numbers(value):
            assert any(abs(number - n) <= 1e-9 * max(1.0, abs(n)) for n in on_line), (
                f"{name}.{path} = {number} is not stated on {citation}: {line[:200]!r}")
