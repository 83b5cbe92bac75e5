"""The `vae-course` command line: happy paths end to end, and every bad input a clear message.

The happy paths run the installed console script in a subprocess, as a user would; the error
paths call ``main()`` in-process and check the exit status and the one-line message.
"""
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_course import cli
from vae_course.idx import write_idx

SCRIPT = Path(sys.executable).with_name("vae-course")


def run_cli(*args, env_extra=None, cwd=None):
    import os
    env = {**os.environ, "VAE_COURSE_DATASET": "fashion-mnist", **(env_extra or {})}
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "vae_course.cli"]
    return subprocess.run(exe + list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A real (tiny) training run through the CLI: 1 epoch on 512 Fashion-MNIST images."""
    from conftest import FASHION_DIR, require
    require((FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), "Debian dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("run")
    result = run_cli("train", "--recipe", "pytorch-mlp", "--epochs", "1", "--subset", "512",
                     "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "checkpoint:" in result.stdout
    return out / "checkpoint.pt", result


def test_every_command_has_help():
    for command in ([], ["train"], ["evaluate"], ["diagnose"], ["generate"], ["data"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0
        assert "usage: vae-course" in result.stdout


def test_train_writes_checkpoint_and_shows_progress(trained_checkpoint):
    checkpoint, result = trained_checkpoint
    assert checkpoint.exists()
    assert "it/s" in result.stderr or "s/it" in result.stderr  # the tqdm progress bar
    assert "test_loss" in result.stdout


def test_train_prints_each_epoch_and_says_why_nothing_is_set_beside_a_subset_run(trained_checkpoint):
    _, result = trained_checkpoint
    assert "losses per image after each epoch (pytorch-mlp on fashion-mnist" in result.stdout
    assert "not set beside the shipped run: --subset made this run a different experiment" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["1"])
    assert len(row.split()) == 3  # epoch, train loss, test loss: no comparison columns


def test_epoch_table_sets_a_full_run_beside_the_source_and_the_shipped_run():
    from vae_course.cli_commands import epoch_table
    from vae_course.pretrained_models import shipped_history
    from vae_course.recipes import get_recipe

    recipe = get_recipe("matlab-2019")
    ours = [{"epoch": n, "train_loss": 40.0 - n, "test_loss": 30.0 - n} for n in (1, 2, 3)]
    table = epoch_table(recipe, "mnist", ours, changed=[]).splitlines()
    assert table[3].split() == ["epoch", "train", "loss", "test", "loss", "source", "printed",
                                "shipped", "run"]
    printed = recipe.reported_numbers["test_loss_per_epoch"]
    shipped = [e["test_loss"] for e in shipped_history("matlab-2019", "mnist").epochs]
    for n, line in enumerate(table[4:], start=1):
        assert [float(v) for v in line.split()] == pytest.approx(
            [n, 40.0 - n, 30.0 - n, printed[n - 1], shipped[n - 1]], abs=5e-5)
    # the source trained on MNIST: on Fashion-MNIST only the shipped run is set beside ours
    fashion = epoch_table(recipe, "fashion-mnist", ours, changed=[])
    assert "source printed" not in fashion and "shipped run" in fashion
    # a changed experiment is set beside nothing, and the reason is given
    warmup = epoch_table(recipe, "mnist", ours, changed=["--kl-warmup-epochs"])
    assert "--kl-warmup-epochs made this run a different experiment" in warmup
    assert len(warmup.splitlines()[-1].split()) == 3


def test_readme_quotes_the_first_r2019b_epochs_as_the_source_and_the_shipped_run_have_them():
    import re

    from vae_course.pretrained_models import shipped_history
    from vae_course.recipes import get_recipe

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    quoted = re.search(r"the source printed ([\d., ]+); the shipped run ([\d., ]+)\)", readme)
    assert quoted, "README.md no longer quotes R2019b's first epochs next to `vae-course train`"
    printed, shipped = ([float(v) for v in group.split(", ")] for group in quoted.groups())
    assert printed == list(get_recipe("matlab-2019").reported_numbers["test_loss_per_epoch"][:3])
    history = shipped_history("matlab-2019", "mnist").epochs
    assert shipped == [round(e["test_loss"], 4) for e in history[:3]]


def test_train_refuses_to_overwrite_and_resumes(trained_checkpoint, tmp_path):
    checkpoint, _ = trained_checkpoint
    again = run_cli("train", "--recipe", "pytorch-mlp", "--epochs", "1", "--subset", "512",
                    "--device", "cpu", "--out", str(checkpoint.parent))
    assert again.returncode == 1 and "--resume" in again.stderr
    copy = tmp_path / "resumed"
    shutil.copytree(checkpoint.parent, copy)
    resumed = run_cli("train", "--recipe", "pytorch-mlp", "--epochs", "2", "--subset", "512",
                      "--device", "cpu", "--out", str(copy), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    from vae_course.checkpoints import load_checkpoint
    assert len(load_checkpoint(copy / "checkpoint.pt")["history"]["epochs"]) == 2


def test_generate_writes_a_64_image_png(trained_checkpoint, tmp_path):
    checkpoint, _ = trained_checkpoint
    png = tmp_path / "samples.png"
    result = run_cli("generate", str(checkpoint), "--n", "64", "--out", str(png))
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(png).convert("L"))
    assert image.shape[0] > 8 * 28 and image.shape[1] > 8 * 28  # an 8x8 grid, upscaled
    assert image.std() > 5  # not a blank image


def test_evaluate_prints_metrics_as_json(trained_checkpoint):
    import json
    checkpoint, _ = trained_checkpoint
    result = run_cli("evaluate", str(checkpoint), "--limit", "500", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["dataset"] == "fashion-mnist" and metrics["test_images"] == 500
    assert 0 < metrics["reconstruction_mse_mean"] < 0.2
    assert metrics["test_kl"] > 0


def test_data_info_and_verify(fashion_dir):
    info = run_cli("data", "info")
    assert info.returncode == 0 and "fashion-mnist" in info.stdout and "T-shirt" in info.stdout
    verify = run_cli("data", "verify", "--root", str(fashion_dir))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count("ok") == 4


# --- bad input: short message, non-zero exit, no traceback ----------------------------------

def call_main(capsys, *args):
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured


def test_unknown_recipe_lists_known_ones(capsys):
    code, out = call_main(capsys, "train", "--recipe", "matlab-2023", "--subset", "10")
    assert code == 1
    for name in ("matlab-2022", "matlab-2019", "tf-cvae", "pytorch-mlp"):
        assert name in out.err


def test_bad_numbers_are_refused(capsys, tmp_path):
    code, out = call_main(capsys, "train", "--recipe", "tf-cvae", "--epochs", "0", "--out", str(tmp_path))
    assert code == 1 and "--epochs" in out.err
    code, out = call_main(capsys, "train", "--recipe", "tf-cvae", "--resume", "--out", str(tmp_path))
    assert code == 1 and "no checkpoint" in out.err


def test_missing_dataset_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    """Offline, with no files anywhere: the message names the remedies (no network needed)."""
    from vae_course import datasets
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path / "share"))
    monkeypatch.delenv("VAE_COURSE_DATA", raising=False)
    info = datasets.DATASETS["mnist"]
    monkeypatch.setitem(datasets.DATASETS, "mnist", type(info)(**{
        **info.__dict__, "mirrors": [(tmp_path / "no-mirror").as_uri() + "/"]}))
    code, out = call_main(capsys, "train", "--recipe", "pytorch-mlp", "--dataset", "mnist",
                          "--out", str(tmp_path / "run"))
    assert code == 1
    assert "fashion-mnist" in out.err or "VAE_COURSE_DATA" in out.err


def test_corrupt_file_names_itself(capsys, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    fashion = Path("/usr/share/datasets/fashion-mnist")
    for f in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        write_idx(root / f, np.zeros((10,) + ((28, 28) if "images" in f else ()), np.uint8))
    with gzip.open(root / "train-images-idx3-ubyte.gz", "wb") as fh:  # a header promising more
        fh.write(bytes([0, 0, 8, 3]) + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 50)
    monkeypatch.setenv("VAE_COURSE_DATA", str(root))
    code, out = call_main(capsys, "train", "--recipe", "pytorch-mlp", "--dataset", "fashion-mnist",
                          "--out", str(tmp_path / "run"))
    assert code == 1
    assert "train-images-idx3-ubyte.gz" in out.err
    assert fashion  # the real files are untouched: we only pointed VAE_COURSE_DATA elsewhere


def test_bad_checkpoint_is_named(capsys, tmp_path):
    bogus = tmp_path / "not-a-checkpoint.pt"
    bogus.write_text("hello")
    code, out = call_main(capsys, "generate", str(bogus), "--out", str(tmp_path / "x.png"))
    assert code == 1 and "not-a-checkpoint.pt" in out.err
    code, out = call_main(capsys, "evaluate", str(tmp_path / "missing.pt"))
    assert code == 1 and "missing.pt" in out.err


def test_generate_needs_png(capsys, tmp_path):
    code, out = call_main(capsys, "generate", str(tmp_path / "c.pt"), "--out", str(tmp_path / "x.jpg"))
    assert code == 1 and ".png" in out.err


def test_device_accepts_cuda_n_and_says_clearly_when_it_is_absent(capsys, tmp_path):
    from vae_course.cli import build_parser
    assert build_parser().parse_args(["doctor", "--device", "CUDA:1"]).device == "cuda:1"
    if not __import__("torch").cuda.is_available():
        code, out = call_main(capsys, "doctor", "--device", "cuda:1")
        assert code == 1 and "CUDA is not available" in out.err
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "--recipe", "tf-cvae", "--device", "gpu"])
    assert exit_info.value.code == 2
    assert "use auto, cpu, cuda, cuda:N or mps" in capsys.readouterr().err
