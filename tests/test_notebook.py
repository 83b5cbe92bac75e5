"""notebook.trained: train a recipe once, then load it from the cache (chapters 5-9 rely on it)."""
import time

import torch

from conftest import another_process_holding
from vae_course.checkpoints import run_lock
from vae_course.notebook import checkpoint_cache_dir, real_or_quick, trained


def test_trained_trains_once_then_loads_the_cached_checkpoint(tmp_path, monkeypatch, fashion_dir):
    monkeypatch.setenv("VAE_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    monkeypatch.delenv("VAE_COURSE_QUICK", raising=False)
    model, history = trained("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=256,
                             device="cpu", progress=False)
    assert len(history.epochs) == 1 and checkpoint_cache_dir() == tmp_path
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / "checkpoint.pt").is_file()
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


def test_real_or_quick_follows_quick_mode(monkeypatch):
    monkeypatch.setenv("VAE_COURSE_QUICK", "1")
    assert real_or_quick(30, 1) == 1
    monkeypatch.setenv("VAE_COURSE_QUICK", "0")
    assert real_or_quick(30, 1) == 30
