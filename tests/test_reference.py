"""The "what should I get" ranges stay true: every shipped model has one and falls inside it."""
import pytest

from vae_course import pretrained_models, reference
from vae_course.data import load_tensors


def test_every_shipped_model_has_a_reference_and_falls_inside_it(mnist_dir):
    shipped = pretrained_models.available()
    assert shipped, "no shipped weights to check"
    for key in shipped:
        recipe, dataset = key.split("/")
        ref = reference.reference(recipe, dataset)
        assert ref is not None, f"{key} ships without a reference range in vae_course/reference.py"
        root = mnist_dir if dataset == "mnist" else None  # others: $VAE_COURSE_DATA
        x, y = load_tensors(dataset, "test", root=root, download=False)
        model = pretrained_models.pretrained(recipe, dataset)
        measured = reference.measure(model, x, recipe, y=y if getattr(model, "conditional", False) else None)
        outside = [row for row in reference.compare(measured, ref) if not row["inside"]]
        assert not outside, f"{key}: {outside}"


def test_ranges_are_ordered_and_say_where_they_come_from():
    for (recipe, dataset), ref in reference.REFERENCES.items():
        assert (ref.recipe, ref.dataset) == (recipe, dataset)
        for name in ("test_loss", "active_units", "kl"):
            low, high = getattr(ref, name)
            assert low <= high, (recipe, name)
        assert len(ref.measured_on) > 20


def test_compare_flags_a_collapsed_run_and_report_says_so():
    ref = reference.reference("pytorch-mlp", "mnist")
    collapsed = {"test_loss": 0.0676, "active_units": 0, "kl": 0.0}
    rows = {row["name"]: row["inside"] for row in reference.compare(collapsed, ref)}
    assert rows == {"test_loss": False, "active_units": False, "kl": False}
    assert reference.report(collapsed, ref).count("OUTSIDE") == 3
    assert reference.reference("course-fast", "mnist") is None  # a recipe the course ships no weights of
    assert "no reference range" in reference.report(collapsed, None)


def test_measure_refuses_unknown_settings():
    with pytest.raises(TypeError, match="learning_rate"):
        reference.measure(None, None, "pytorch-mlp", learning_rate=1.0)


def test_diagnose_prints_the_reference_when_the_run_used_the_recipes_loss(tmp_path, monkeypatch, capsys,
                                                                             mnist_dir):
    import json

    from vae_course import cli
    from vae_course.train import train_recipe

    monkeypatch.setenv("VAE_COURSE_DATA", str(mnist_dir.parent))
    for name, overrides in (("recipe", {}), ("literal", {"beta": 1.0})):
        train_recipe("pytorch-mlp", dataset="mnist", epochs=1, subset=256, device="cpu",
                     out=tmp_path / name, progress=False, **overrides)
    assert cli.main(["diagnose", str(tmp_path / "recipe" / "checkpoint.pt"), "--k", "0", "--subset", "200"]) == 0
    out = capsys.readouterr().out
    assert "reference for pytorch-mlp on mnist" in out and "(measured on 200 test images)" in out
    assert "OUTSIDE" in out  # one epoch on 256 images is far from a trained model
    assert cli.main(["diagnose", str(tmp_path / "literal" / "checkpoint.pt"), "--k", "0", "--subset", "200",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reference"].startswith("no reference: trained with other loss settings")
    assert "beta=1.0" in result["reference"]
