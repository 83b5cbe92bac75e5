"""The recipes say what the sources did; these tests pin the facts the issue lists."""
import dataclasses

import pytest

from vae_course import losses, models
from vae_course.recipes import RECIPES, SOURCE_RECIPES, Recipe, UnknownRecipe, get_recipe


def test_the_four_sources_have_the_agreed_names():
    assert set(SOURCE_RECIPES) == {"matlab-2022", "matlab-2019", "tf-cvae", "pytorch-mlp"}
    assert set(SOURCE_RECIPES) <= set(RECIPES)


@pytest.mark.parametrize("name, latent, batch, epochs, recon, kl, beta, binarize", [
    ("matlab-2022", 16, 128, 30, "half-sse", "closed-form", 1.0, "none"),
    ("matlab-2019", 20, 512, 50, "half-sse", "closed-form", 1.0, "none"),
    ("tf-cvae", 2, 32, 10, "bernoulli", "monte-carlo", 1.0, "static"),
    ("pytorch-mlp", 2, 128, 20, "mean-mse", "closed-form", 0.001, "none"),
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
