"""The shipped weights: every file matches its manifest checksum and rebuilds the model the
manifest describes, trained the way its recipe says; damaged or missing files are refused
by name."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repo_tools import load_tool
from vae_course import pretrained_models as shipped
from vae_course.models import build_model
from vae_course.recipes import get_recipe

ENTRIES = shipped.manifest()["models"]


def test_weights_ship_within_budget_and_match_their_checksums():
    assert ENTRIES, "the package ships no pretrained weights (run tools/export_pretrained.py)"
    for key, entry in ENTRIES.items():
        for name in ("", "losses_", "frames_"):
            if f"{name}file" in entry:
                path = shipped.WEIGHTS_DIR / entry[f"{name}file"]
                assert shipped.sha256(path) == entry[f"{name}sha256"], (key, path.name)
    total = sum(path.stat().st_size for path in shipped.WEIGHTS_DIR.iterdir())  # losses, frames too
    assert total <= 10 * 1024 * 1024


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_each_shipped_model_is_its_recipe_trained_to_full_length(key):
    entry = ENTRIES[key]
    recipe = get_recipe(entry["recipe"])
    assert key == f"{recipe.name}/{entry['dataset']}"
    assert entry["epochs"] == recipe.epochs
    training = entry["training"]
    for field in ("lr", "batch_size", "reconstruction", "kl", "beta", "binarize", "drop_last", "shuffle"):
        assert training[field] == getattr(recipe, field), (key, field)
    assert entry["model"] == {"arch": recipe.arch, **recipe.model_kwargs}
    model = shipped.pretrained(recipe.name, entry["dataset"])
    assert not model.training
    state = torch.load(shipped.WEIGHTS_DIR / entry["file"], weights_only=True)
    assert all(t.dtype == torch.float32 for t in state.values())
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_each_shipped_model_comes_with_every_mini_batch_loss(key):
    """The loss of each of the run's iterations ships too: chapter 6 draws the full run's
    training-progress plot from it and the Reproducing page reads the last one."""
    entry = ENTRIES[key]
    recipe = get_recipe(entry["recipe"])
    history = shipped.shipped_history(recipe.name, entry["dataset"])
    per_epoch = 60_000 // recipe.batch_size if recipe.drop_last else -(-60_000 // recipe.batch_size)
    assert len(history.iteration_loss) == entry["epochs"] * per_epoch
    assert history.iteration_loss[-1] == pytest.approx(entry["last_batch_loss"], rel=1e-5)
    for record, loss in zip(history.epochs, range(0, len(history.iteration_loss), per_epoch)):
        epoch_losses = history.iteration_loss[loss:loss + per_epoch]
        # the epoch's train loss is the image-weighted mean of its batch losses
        assert min(epoch_losses) <= record["train_loss"] <= max(epoch_losses)
    assert history.epochs == entry["history"]


def test_tf_cvae_ships_its_per_epoch_frames():
    """The TensorFlow tutorial's GIF: 16 test images reconstructed after each epoch."""
    entry = ENTRIES["tf-cvae/mnist"]
    frames = shipped.shipped_frames("tf-cvae", "mnist")
    assert frames.dtype == np.uint8 and frames.shape[0] == entry["epochs"]
    assert frames.shape[1] == frames.shape[2] >= 4 * 28  # a 4 x 4 tile
    first, last = frames[0].astype(float), frames[-1].astype(float)
    assert np.abs(first - last).mean() > 1  # the reconstructions changed while training
    with pytest.raises(shipped.PretrainedError, match="saved no per-epoch frames"):
        shipped.shipped_frames("pytorch-mlp", "mnist")


def test_a_damaged_loss_file_is_refused_by_name(tmp_path):
    _ship(tmp_path)
    manifest = json.loads((tmp_path / shipped.MANIFEST).read_text())
    (tmp_path / "m.losses.json").write_text('{"iteration_loss": [1.0, 2.0]}')
    entry = manifest["models"]["pytorch-mlp/mnist"]
    entry.update(losses_file="m.losses.json", losses_sha256="0" * 64, history=[])
    (tmp_path / shipped.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(shipped.PretrainedError, match="m.losses.json does not match its checksum"):
        shipped.shipped_history("pytorch-mlp", "mnist", folder=tmp_path)
    entry["losses_sha256"] = shipped.sha256(tmp_path / "m.losses.json")
    (tmp_path / shipped.MANIFEST).write_text(json.dumps(manifest))
    assert shipped.shipped_history("pytorch-mlp", "mnist", folder=tmp_path).iteration_loss == [1.0, 2.0]


def _ship(folder, recipe="pytorch-mlp", dataset="mnist"):
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[8], latent_dim=2)
    torch.save(model.state_dict(), folder / "m.pt")
    entry = {"file": "m.pt", "sha256": shipped.sha256(folder / "m.pt"), "model": model.config}
    (folder / shipped.MANIFEST).write_text(json.dumps({"models": {f"{recipe}/{dataset}": entry}}))
    return model


def test_pretrained_returns_the_saved_model(tmp_path):
    model = _ship(tmp_path)
    loaded = shipped.pretrained("pytorch-mlp", "mnist", folder=tmp_path)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded.decode(loaded.encode(x)[0]), model.eval().decode(model.encode(x)[0]))


def test_a_damaged_file_is_refused_by_name(tmp_path):
    _ship(tmp_path)
    data = bytearray((tmp_path / "m.pt").read_bytes())
    data[-20] ^= 1
    (tmp_path / "m.pt").write_bytes(bytes(data))
    with pytest.raises(shipped.PretrainedError, match=r"m\.pt does not match its checksum.*reinstall"):
        shipped.pretrained("pytorch-mlp", "mnist", folder=tmp_path)


def test_missing_weights_and_unknown_models_say_what_ships(tmp_path):
    _ship(tmp_path)
    with pytest.raises(shipped.PretrainedError, match=r"no pretrained weights for recipe 'tf-cvae'.*pytorch-mlp/mnist"):
        shipped.pretrained("tf-cvae", "mnist", folder=tmp_path)
    (tmp_path / "m.pt").unlink()
    with pytest.raises(shipped.PretrainedError, match=r"m\.pt is missing"):
        shipped.pretrained("pytorch-mlp", "mnist", folder=tmp_path)
    (tmp_path / shipped.MANIFEST).write_text("{not json")
    with pytest.raises(shipped.PretrainedError, match="not valid JSON"):
        shipped.available(tmp_path)


def test_the_weights_are_package_data_and_not_ignored_by_git():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    repo = Path(__file__).resolve().parents[1]
    config = tomllib.loads((repo / "pyproject.toml").read_text())
    assert {"weights/*.pt", "weights/manifest.json"} <= set(config["tool"]["setuptools"]["package-data"]["vae_course"])
    ignored = subprocess.run(["git", "check-ignore", "-q", "vae_course/weights/course-mnist.pt"], cwd=repo)
    assert ignored.returncode == 1  # 1: not ignored (other *.pt files are)


def test_the_package_offers_pretrained_at_the_top(tmp_path):
    import vae_course
    assert vae_course.pretrained is shipped.pretrained
    with pytest.raises(AttributeError, match="no attribute 'pretrianed'"):
        vae_course.pretrianed


def test_the_readme_lists_exactly_the_shipped_models():
    """The README's table of shipped weights is read by people choosing a model: it must name
    every shipped model with the epochs, final test loss and training time the manifest records."""
    import re
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w-]+)` \| ([\w-]+) \| (\d+) \| ([\d.]+) \| (\d+) min \|$", readme, re.M)
    listed = {f"{recipe}/{dataset}": (int(epochs), loss, int(minutes))
              for recipe, dataset, epochs, loss, minutes in rows}
    models = shipped.manifest()["models"]
    assert set(listed) == set(models), "README.md's table of shipped weights and manifest.json differ"
    for key, (epochs, loss, minutes) in listed.items():
        entry = models[key]
        decimals = len(loss.split(".")[1])
        assert epochs == entry["epochs"], key
        assert loss == f"{entry['final']['test_loss']:.{decimals}f}", key
        assert minutes == round(entry["train_seconds"] / 60), key
    # and the total training time per dataset, which says what a regeneration costs
    totals = re.findall(r"[Tt]he (MNIST|Fashion-MNIST) five took ([\d.]+) hours", readme)
    assert sorted(name for name, _ in totals) == ["Fashion-MNIST", "MNIST"]
    for name, hours in totals:
        seconds = sum(entry["train_seconds"] for entry in models.values()
                      if entry["dataset"] == name.lower())
        assert hours == f"{seconds / 3600:.1f}", name


def test_every_shipped_loss_curve_reads_back_and_ends_at_the_recorded_last_batch():
    # the gzipped losses decompress to the run's mini-batch losses: as many as its epochs had
    # iterations, the last one the manifest's last_batch_loss (stored to 6 significant digits)
    for key, entry in shipped.manifest()["models"].items():
        recipe, dataset = key.split("/")
        history = shipped.shipped_history(recipe, dataset)
        assert entry["losses_file"].endswith(".losses.json.gz"), key
        assert len(history.iteration_loss) > len(entry["history"]) >= entry["epochs"], key
        assert history.iteration_loss[-1] == pytest.approx(entry["last_batch_loss"], rel=1e-5), key


def test_the_exported_losses_file_is_the_same_bytes_for_the_same_losses():
    export = load_tool("export_pretrained")
    first = export.losses_file_bytes([3.25, 2.5])
    assert first == export.losses_file_bytes([3.25, 2.5])  # no timestamp: a stable SHA-256
    assert json.loads(gzip.decompress(first)) == {"iteration_loss": [3.25, 2.5]}
