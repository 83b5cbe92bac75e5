"""benchmarks/iwae_anchor.py: a tiny real run writes a well-formed result, the estimates resume
exactly, the comparison table, and clear errors for bad arguments (seconds, no long training)."""
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/
from benchmarks.iwae_anchor import (PUBLISHED, StopAfter, TimeBudgetSpent, iwae_per_image,  # noqa: E402
                                    main, nll_summary, binary_test_images)
from benchmarks.report import iwae_anchor_table  # noqa: E402

from vae_course.data import _derived_seed  # noqa: E402
from vae_course.evaluate import DYNAMIC_TEST_SEED, iwae_log_likelihood  # noqa: E402
from vae_course.models import build_model  # noqa: E402


@pytest.fixture
def mnist(mnist_dir, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(mnist_dir.parent))
    return mnist_dir


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """main(--threads N) sets the process's torch threads, as a CLI should; the tests after
    these, in the same pytest worker, must still run at the count the run asked for."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_tiny_run_writes_a_well_formed_result_and_reuses_its_estimates(tmp_path, mnist, capsys):
    out, work = tmp_path / "anchor.json", tmp_path / "work"
    args = ["--model", "mlp", "--k", "4", "--train-subset", "256", "--work", str(work),
            "--json", str(out), "--no-progress", "--threads", "1"]
    # A time budget spent at once: training stops after its first epoch, which is scored.
    assert main(args + ["--epochs", "2", "--train-minutes", "0.0001", "--images", "50"]) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "iwae-anchor" and result["dataset"] == "mnist"
    assert result["published"]["burda2016"]["value_nats"] == 86.76
    assert result["published"]["pythae"]["value_nats"] == 89.78
    entry = result["models"]["mlp"]
    assert entry["arch"] == {"arch": "mlp", "hidden": [200, 200], "latent_dim": 50}
    assert entry["training"]["epochs"] == 1 and entry["training"]["target_epochs"] == 2
    assert entry["training"]["stopped"].startswith("stopped after epoch 1 of 2")
    assert entry["training"]["binarize"] == "dynamic"
    assert entry["training"]["train_images"] == 256 and len(entry["test_loss_per_epoch"]) == 1
    iwae = entry["iwae"]
    assert (iwae["k"], iwae["images"], iwae["test_images"]) == (4, 50, 10000)
    assert iwae["standard_error"] == pytest.approx(iwae["std"] / math.sqrt(50))
    # One epoch on 256 images: a poor model, but a finite NLL in nats, below its one-sample -ELBO
    # (on the whole test set, so only roughly: the bound with k = 4 is tighter than k = 1).
    assert 100 < iwae["mean"] < 800 and math.isfinite(entry["elbo_k1"]["negative_elbo_nats"])
    assert iwae["mean"] < entry["elbo_k1"]["negative_elbo_nats"] + 3 * iwae["std"]
    # On the same images the k = 4 bound is tighter than the one-sample ELBO (up to noise).
    assert iwae["mean"] < entry["elbo_k1"]["on_iwae_images"] + 2 * iwae["standard_error"]
    differences = " ".join(entry["protocol_differences"])
    for needed in ("tanh", "k = 4", "50 of the 10000 test images", "first 256 of the 60000", "3280"):
        assert needed in differences
    assert "IWAE NLL" in capsys.readouterr().out

    # Scoring the checkpoint as it stands with more images keeps the 50 estimates already made.
    stored = np.load(work / "mlp" / "iwae-e1-k4-seed0.npy")
    assert stored.shape == (50,)
    assert main(args + ["--score-only", "--images", "80"]) == 0
    again = json.loads(out.read_text())["models"]["mlp"]
    assert again["iwae"]["images"] == 80 and again["training"]["epochs"] == 1
    assert again["training"]["stopped"] == "scored at epoch 1 of 2 (--score-only)"
    np.testing.assert_array_equal(np.load(work / "mlp" / "iwae-e1-k4-seed0.npy")[:50], stored)
    assert "| MLP 784-200-200-50" in iwae_anchor_table(json.loads(out.read_text()))

    # The training column says where the epochs were trained, not where they were scored.
    trained_on = entry["training"]["hardware"]
    assert trained_on.endswith(", 1 torch threads") and entry["hardware"] == trained_on
    assert main(args + ["--score-only", "--images", "50", "--threads", "2"]) == 0
    rescored = json.loads(out.read_text())["models"]["mlp"]
    assert rescored["hardware"].endswith(", 2 torch threads")
    assert rescored["training"]["hardware"] == trained_on
    assert f"1 epoch, 0 min on {trained_on} |" in iwae_anchor_table(json.loads(out.read_text()))
    # A resumed run trained elsewhere names each call's epochs.
    assert main(args + ["--epochs", "2", "--images", "50", "--threads", "2"]) == 0
    resumed = json.loads(out.read_text())["models"]["mlp"]["training"]
    assert resumed["epochs"] == 2
    assert resumed["hardware"] == (f"epochs 1-1 on {trained_on}; epochs 2-2 on "
                                   f"{trained_on.replace(', 1 torch threads', ', 2 torch threads')}")


def test_test_images_are_one_fixed_binarization_and_nested_subsets(mnist):
    small, index_small = binary_test_images("mnist", 30)
    large, index_large = binary_test_images("mnist", 90)
    assert set(torch.unique(large).tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(large[:30], small)
    np.testing.assert_array_equal(index_large[:30], index_small)
    assert len(set(index_large.tolist())) == 90
    # The same binary pixels evaluate_elbo(binarize="dynamic") scores: one draw with its seed.
    from vae_course import data
    x, _ = data.load_tensors("mnist", "test")
    whole = data.binarized(x, "dynamic", torch.Generator().manual_seed(DYNAMIC_TEST_SEED))
    torch.testing.assert_close(large, whole[torch.from_numpy(index_large)])


def test_estimates_do_not_depend_on_where_a_run_was_interrupted(tmp_path):
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16], latent_dim=3)
    x = (torch.rand(60, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    whole, _ = iwae_per_image(model, x, k=8, seed=3, progress=False)
    store = tmp_path / "est.npy"
    part, _ = iwae_per_image(model, x[:50], k=8, seed=3, store=store, progress=False)  # 2 whole pieces
    np.testing.assert_array_equal(part, whole[:50])
    np.save(store, part[:40])  # as if interrupted within a piece: that piece is computed again
    resumed, seconds = iwae_per_image(model, x, k=8, seed=3, store=store, progress=False)
    np.testing.assert_array_equal(resumed, whole)
    assert seconds >= 0 and float((tmp_path / "est.seconds").read_text()) == pytest.approx(seconds, abs=0.1)
    # A smaller request afterwards is served from the store and leaves it whole.
    first, _ = iwae_per_image(model, x[:25], k=8, seed=3, store=store, progress=False)
    np.testing.assert_array_equal(first, whole[:25])
    assert np.load(store).shape == (60,)
    # Each piece is the library's estimate, drawn with a generator of its own.
    generator = torch.Generator().manual_seed(_derived_seed(3, 0))
    np.testing.assert_array_equal(whole[:25], iwae_log_likelihood(model, x[:25], k=8, generator=generator))


def test_nll_summary_is_the_mean_of_minus_log_p_with_its_standard_error():
    summary = nll_summary(np.array([-80.0, -90.0, -100.0, -110.0]))
    assert summary["mean"] == pytest.approx(95.0)
    assert summary["std"] == pytest.approx(np.std([80, 90, 100, 110], ddof=1))
    assert summary["standard_error"] == pytest.approx(summary["std"] / 2)
    assert summary["images"] == 4
    with pytest.raises(ValueError, match="no estimates"):
        nll_summary(np.zeros(0))


def _results():
    entry = {"model": "MLP 784-200-200-50, ReLU",
             "training": {"epochs": 40, "wall_seconds": 1800.0},
             "iwae": {"k": 5000, "mean": 95.0, "standard_error": 0.5, "images": 2000, "test_images": 10000},
             "elbo_k1": {"negative_elbo_nats": 99.5, "on_iwae_images": 98.25}, "hardware": "CPU AMD EPYC, 2 cores, 1 torch threads",
             "protocol_differences": ["ReLU hidden units; Burda et al. used tanh", "a | pipe"]}
    conv = {**entry, "model": "course recipe (conv)", "training": {"epochs": 1, "wall_seconds": 60.0},
            "iwae": {**entry["iwae"], "k": 1000, "images": 10000, "mean": 88.123}}
    return {"benchmark": "iwae-anchor", "published": PUBLISHED, "models": {"mlp": entry, "course-dynamic": conv}}


def test_anchor_table_puts_each_measurement_next_to_the_published_values():
    table = iwae_anchor_table(_results())
    lines = table.splitlines()
    assert len(lines) == 2 + 2 + 2  # header, rule, two models, two published rows
    columns = lines[0].count("|")
    assert all(line.count("|") == columns for line in lines)  # a pipe in a cell is escaped
    mlp, conv, burda, pythae = lines[2:]
    assert "40 epochs, 30 min" in mlp and "| 5000 | 2000 of 10000 | 95.00 ± 0.50 | 98.25 / 99.50 |" in mlp
    assert "86.76 (Burda et al. 2016); 89.78 (pythae)" in mlp and "used tanh" in mlp
    assert "1 epoch," in conv and "| 1000 | 10000 | 88.12 ± 0.50 |" in conv
    assert burda.startswith("| Burda et al. 2016") and "| 5000 | 10000 | 86.76 |" in burda
    assert pythae.startswith("| pythae") and "| 200 |" in pythae and "89.78" in pythae


def test_anchor_table_without_measurements_says_what_to_run():
    with pytest.raises(ValueError, match="benchmarks.iwae_anchor --model mlp"):
        iwae_anchor_table({"published": PUBLISHED, "models": {}})


@pytest.mark.parametrize("args, message", [
    (["--model", "mlp", "--k", "0"], "--k: must be at least 1, got 0"),
    (["--model", "mlp", "--images", "-5"], "--images: must be at least 1, got -5"),
    (["--model", "mlp", "--epochs", "ten"], "--epochs: expected a whole number, got 'ten'"),
    (["--model", "mlp", "--train-minutes", "0"], "--train-minutes: must be a positive number"),
    (["--model", "vq-vae"], "invalid choice: 'vq-vae'"),
    (["--k", "10"], "--model is required"),
])
def test_bad_arguments_are_refused_with_a_clear_message(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_more_images_than_the_test_set_is_refused(tmp_path, mnist, capsys):
    with pytest.raises(SystemExit):
        main(["--model", "mlp", "--images", "10001", "--work", str(tmp_path), "--json", str(tmp_path / "r.json")])
    assert "--images 10001: the mnist test set has only 10000 images" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_score_only_needs_a_checkpoint_and_no_training_flags(tmp_path, mnist, capsys):
    with pytest.raises(SystemExit):
        main(["--model", "course-dynamic", "--score-only", "--work", str(tmp_path)])
    assert f"no checkpoint {tmp_path / 'course-dynamic' / 'checkpoint.pt'} to score" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", "mlp", "--score-only", "--epochs", "3", "--work", str(tmp_path)])
    assert "--score-only trains nothing" in capsys.readouterr().err


def test_report_of_a_missing_file_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--report", str(tmp_path / "none.json")])
    assert "no such results file" in capsys.readouterr().err


def test_stop_after_ends_training_only_once_the_budget_is_spent():
    clock = [1000.0]
    stop = StopAfter(minutes=2, clock=lambda: clock[0])
    stop.on_epoch_end(SimpleNamespace(epoch=1, epochs=10))      # 0 s spent: go on
    clock[0] += 121
    with pytest.raises(TimeBudgetSpent, match="after epoch 2 of 10"):
        stop.on_epoch_end(SimpleNamespace(epoch=2, epochs=10))
    stop.on_epoch_end(SimpleNamespace(epoch=10, epochs=10))     # the last epoch: nothing to stop
