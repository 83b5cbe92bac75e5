"""tools/train_book_models.py --summary: the record of the book's full-length runs."""
import json

from repo_tools import load_tool
from vae_course.checkpoints import save_checkpoint
from vae_course.history import History
from vae_course.models import build_model


def test_summary_keeps_runs_trained_on_another_machine(tmp_path, monkeypatch):
    # the cache holds one finished run; the file already records another trained elsewhere
    tool = load_tool("train_book_models")
    monkeypatch.setattr(tool, "RUNS", [("tf-cvae", "mnist", 0, {}), ("tf-cvae", "mnist", 1, {})])
    monkeypatch.setattr(tool.notebook, "run_dir", lambda recipe, dataset, seed, overrides: tmp_path / str(seed))
    epochs = [{"epoch": e, "test_loss": 1.0, "seconds": 2.0} for e in range(1, 11)]
    save_checkpoint(tmp_path / "0" / "checkpoint.pt", model=build_model("mlp", latent_dim=2),
                    history=History(iteration_loss=[3.0], epochs=epochs), epoch=10)
    summary = tmp_path / "book-runs.json"
    elsewhere = {"recipe": "tf-cvae", "dataset": "mnist", "seed": 1, "overrides": {}, "epochs": epochs,
                 "last_batch_loss": 5.0, "train_seconds": 20.0, "hardware": "elsewhere"}
    stale = dict(elsewhere, seed=0, last_batch_loss=99.0)  # replaced by the cached run
    summary.write_text(json.dumps({"runs": [stale, elsewhere]}))
    tool.summarize(summary)
    runs = json.loads(summary.read_text())["runs"]
    assert [(r["seed"], r["last_batch_loss"], r["hardware"]) for r in runs] == [
        (0, 3.0, "not recorded"), (1, 5.0, "elsewhere")]
