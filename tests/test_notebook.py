"""notebook.trained: train a recipe once, then load it from the cache (chapters 5-9 rely on it)."""
import json
import re
import time

import pytest
import torch

from conftest import another_process_holding
from vae_course.checkpoints import run_lock
from vae_course.notebook import checkpoint_cache_dir, real_or_quick, repo_file, run_dir, trained


def test_trained_trains_once_then_loads_the_cached_checkpoint(tmp_path, monkeypatch, fashion_dir):
    monkeypatch.setenv("VAE_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    model, history = trained("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=256,
                             device="cpu", progress=False)
    assert len(history.epochs) == 1 and checkpoint_cache_dir() == tmp_path
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / "checkpoint.pt").is_file()
    # where the tools that train and export the book's models look for it
    assert folders[0] == run_dir("pytorch-mlp", "fashion-mnist", epochs=1, subset=256)
    again, history_again = trained("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=256,
                                   device="cpu", progress=False)
    assert history_again.to_dict() == history.to_dict()  # loaded, not retrained
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_a_second_notebook_asking_for_the_same_model_waits_its_turn(tmp_path, monkeypatch, fashion_dir):
    monkeypatch.setenv("VAE_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    trained("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=128, device="cpu", progress=False)
    folder = next(tmp_path.iterdir())
    start = time.perf_counter()
    with another_process_holding(folder, seconds=2):
        _, history = trained("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=128, device="cpu",
                             progress=False)  # blocks until the other process lets go
    assert time.perf_counter() - start > 0.5 and len(history.epochs) == 1  # waited, then loaded
    with run_lock(folder):
        pass


def test_run_dir_defaults_to_the_recipe_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    folder = run_dir("pytorch-mlp", "mnist")
    assert folder.parent == tmp_path and re.fullmatch(r"pytorch-mlp-mnist-e100-s0-[0-9a-f]{8}", folder.name)
    assert run_dir("pytorch-mlp", "mnist", seed=1).name.startswith("pytorch-mlp-mnist-e100-s1-")
    assert run_dir("pytorch-mlp", "mnist", overrides={"beta": 4.0}) != folder


def test_real_or_quick_follows_quick_mode(monkeypatch):
    monkeypatch.setenv("VAE_COURSE_QUICK", "1")
    assert real_or_quick(30, 1) == 1
    monkeypatch.setenv("VAE_COURSE_QUICK", "0")
    assert real_or_quick(30, 1) == 30


def test_repo_file_is_found_from_a_subfolder_of_the_repository(tmp_path, monkeypatch):
    """A notebook runs in notebooks/ or book/; the benchmark results sit at the repository root."""
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "book-runs.json").write_text("{}")
    (tmp_path / "book" / "static").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "book" / "static")
    assert repo_file("benchmarks/results/book-runs.json") == results / "book-runs.json"
    assert repo_file("benchmarks/results") == results  # a folder too (the Performance page reads all of it)
    monkeypatch.chdir(tmp_path)
    assert repo_file("benchmarks/results/book-runs.json") == results / "book-runs.json"


def test_repo_file_names_the_missing_file_and_what_writes_it(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    with pytest.raises(FileNotFoundError, match=r"benchmarks/results/book-runs\.json not found in "
                       r".*notebooks or any folder above it: open this notebook in a clone of the "
                       r"vae-course repository; tools/train_book_models\.py --summary writes it"):
        repo_file("benchmarks/results/book-runs.json", "tools/train_book_models.py --summary")


def _ship_mlp(folder, monkeypatch):
    """A shipped pytorch-mlp/fashion-mnist in ``folder`` (the recipe's own shape)."""
    import json
    from vae_course import pretrained_models
    from vae_course.models import build_model
    torch.manual_seed(3)
    model = build_model("mlp", hidden=[128], latent_dim=2)
    torch.save(model.state_dict(), folder / "m.pt")
    record = {"epoch": 1, "train_loss": 1.0, "test_loss": 0.5, "seconds": 2.0}
    entry = {"file": "m.pt", "sha256": pretrained_models.sha256(folder / "m.pt"), "model": model.config,
             "history": [record], "hardware": "CPU Imaginary 9000, 64 cores"}
    (folder / "manifest.json").write_text(json.dumps({"models": {"pytorch-mlp/fashion-mnist": entry}}))
    monkeypatch.setattr(pretrained_models, "WEIGHTS_DIR", folder)
    return model


def test_trained_takes_the_recipe_as_written_from_the_shipped_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    monkeypatch.delenv("VAE_COURSE_RETRAIN", raising=False)
    monkeypatch.setenv("VAE_COURSE_CHECKPOINTS", str(tmp_path / "cache"))
    shipped = _ship_mlp(tmp_path, monkeypatch)
    model, history = trained("pytorch-mlp", dataset="fashion-mnist", device="cpu", progress=False)
    for name, tensor in shipped.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)
    assert history.epochs == [{"epoch": 1, "train_loss": 1.0, "test_loss": 0.5, "seconds": 2.0}]
    assert not (tmp_path / "cache").exists()  # nothing was trained or cached
    # anything else than the recipe as written, or a request to retrain, is trained instead
    from vae_course.notebook import _shipped_entry as entry
    assert entry("pytorch-mlp", "fashion-mnist", 100, None, 0, {}, False)["file"] == "m.pt"
    assert entry("pytorch-mlp", "mnist", 100, None, 0, {}, False) is None          # not shipped
    assert entry("pytorch-mlp", "fashion-mnist", 3, None, 0, {}, False) is None    # shorter
    assert entry("pytorch-mlp", "fashion-mnist", 100, None, 1, {}, False) is None  # other seed
    assert entry("pytorch-mlp", "fashion-mnist", 100, None, 0, {"beta": 1.0}, False) is None
    assert entry("pytorch-mlp", "fashion-mnist", 100, 500, 0, {}, False) is None
    assert entry("pytorch-mlp", "fashion-mnist", 100, None, 0, {}, True) is None   # retrain=True
    monkeypatch.setenv("VAE_COURSE_RETRAIN", "1")
    assert entry("pytorch-mlp", "fashion-mnist", 100, None, 0, {}, False) is None
    monkeypatch.delenv("VAE_COURSE_RETRAIN")
    monkeypatch.setenv("VAE_COURSE_QUICK", "1")  # quick mode (CI) serves the real weights too
    assert entry("pytorch-mlp", "fashion-mnist", 100, None, 0, {}, False) is not None


def test_trained_reads_the_manifest_once_and_still_checks_the_shipped_files(tmp_path, monkeypatch):
    from vae_course import pretrained_models
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    monkeypatch.delenv("VAE_COURSE_RETRAIN", raising=False)
    _ship_mlp(tmp_path, monkeypatch)
    (tmp_path / "m.losses.json").write_text('{"iteration_loss": [2.0, 1.0]}')
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["models"]["pytorch-mlp/fashion-mnist"].update(
        losses_file="m.losses.json", losses_sha256=pretrained_models.sha256(tmp_path / "m.losses.json"))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    reads = []
    read_manifest = pretrained_models.manifest
    monkeypatch.setattr(pretrained_models, "manifest", lambda *a: reads.append(a) or read_manifest(*a))
    _, history = trained("pytorch-mlp", dataset="fashion-mnist", device="cpu", progress=False)
    assert len(reads) == 1 and history.iteration_loss == [2.0, 1.0]
    for damaged in ("m.losses.json", "m.pt"):  # each file is checked against its SHA-256 all the same
        data = bytearray((tmp_path / damaged).read_bytes())
        data[-3] ^= 1
        (tmp_path / damaged).write_bytes(bytes(data))
        with pytest.raises(pretrained_models.PretrainedError, match=rf"{damaged} does not match its checksum"):
            trained("pytorch-mlp", dataset="fashion-mnist", device="cpu", progress=False)


def test_describe_model_says_whether_the_model_is_the_shipped_one(tmp_path, monkeypatch):
    from vae_course.history import History
    from vae_course.notebook import describe_model
    _ship_mlp(tmp_path, monkeypatch)
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    _, history = trained("pytorch-mlp", dataset="fashion-mnist", device="cpu", progress=False)
    line = describe_model("pytorch-mlp", history, "fashion-mnist")
    assert line.startswith("pytorch-mlp on fashion-mnist: 1 epochs (recipe: 100), 0.0 min")
    assert "CPU Imaginary 9000" in line and line.endswith("shipped weights vae_course/weights/m.pt")
    other = History(epochs=[{"epoch": e, "seconds": 30.0} for e in (1, 2)])  # e.g. a retrained run
    line = describe_model("pytorch-mlp", other, "fashion-mnist")
    assert "2 epochs (recipe: 100), 1.0 min" in line and line.endswith("trained here")
    assert "Imaginary" not in line
    line = describe_model("pytorch-mlp", other, "fashion-mnist", beta=4.0)
    assert line.startswith("pytorch-mlp (beta=4.0) on fashion-mnist: 2 epochs")
