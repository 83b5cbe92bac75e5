"""Fault injection: bad files, hostile checkpoints, concurrent runs, full disks, bad arguments.

Every fault must end in one clear message (naming the file or argument and the fix), lose
nothing and open nothing. Everything here is local: temporary folders, bounded in time.
"""
import errno
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from vae_course import cli
from vae_course.checkpoints import CheckpointError, load_checkpoint, load_model, run_lock, save_checkpoint
from vae_course.evaluate import encode_means, evaluate_elbo, reconstruction_errors
from vae_course.losses import elbo_terms
from vae_course.models import build_model
from vae_course.train import fit


def _model(**kwargs):
    torch.manual_seed(0)
    return build_model("mlp", **{"hidden": [8], "latent_dim": 2, **kwargs})


def _x(n=32):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _checkpoint(tmp_path, name="checkpoint.pt", **fit_kwargs) -> Path:
    path = tmp_path / name
    fit(_model(), _x(), epochs=1, batch_size=16, lr=1e-3, reconstruction="bernoulli", kl="closed-form",
        beta=1.0, binarize="none", drop_last=False, device="cpu", progress=False, checkpoint=path,
        **fit_kwargs)
    return path


def _main(capsys, *args):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return code, out


# --------------------------------------------------------------------------- security

def test_a_symlink_planted_as_the_temporary_file_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.pt.tmp", ".checkpoint.pt.tmp"):
        (run / name).symlink_to(victim)
    _checkpoint(run)
    assert victim.read_text() == "precious"
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert sorted(p.name for p in run.iterdir()) == [".checkpoint.pt.tmp", ".lock", "checkpoint.pt",
                                                      "checkpoint.pt.tmp"]


def _nested(depth=10, width=10):
    value = [0]
    for _ in range(depth):
        value = [value] * width  # shared references: 10**10 leaves in a few bytes
    return value


@pytest.mark.parametrize("where", ["config.model.hidden", "version", "epoch", "config.dataset"])
def test_a_crafted_checkpoint_cannot_exhaust_memory_with_its_error_message(tmp_path, where):
    path = _checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    if where == "config.model.hidden":
        ckpt["config"]["model"]["hidden"] = _nested()
    elif where == "config.dataset":
        ckpt["config"]["dataset"] = _nested()
    else:
        ckpt[where] = _nested()
    torch.save(ckpt, path)
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert time.perf_counter() - start < 5
    assert len(str(info.value)) < 600 and str(path) in str(info.value)


def test_flipped_bits_in_the_weights_are_detected(tmp_path):
    path = _checkpoint(tmp_path)
    with zipfile.ZipFile(path) as archive:
        entry = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    data = bytearray(path.read_bytes())
    with open(path, "rb") as f:  # the local header: 30 bytes + name + extra, then the tensor bytes
        f.seek(entry.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    start = entry.header_offset + 30 + name_len + extra_len
    for k in range(0, min(400, entry.file_size), 4):
        data[start + k] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_checkpoint(path)


def test_version_epoch_and_foreign_configs_are_checked(tmp_path):
    path = _checkpoint(tmp_path)
    for change, message in ((lambda c: c.update(version=99), r"format version 99.*upgrade"),
                            (lambda c: c.update(epoch=-3), "epoch -3"),
                            (lambda c: c["config"]["model"].update(latent_dim=5), "weights do not fit"),
                            (lambda c: c["config"]["model"].update(wings=2), "cannot build"),
                            (lambda c: c["config"]["model"].update(hidden="8"), "cannot build")):
        ckpt = torch.load(path, weights_only=True)
        change(ckpt)
        torch.save(ckpt, tmp_path / "changed.pt")
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / "changed.pt")


def test_a_version_1_checkpoint_without_checksum_still_loads_and_resumes(tmp_path):
    path = _checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["version"] = 1
    del ckpt["checksum"]
    ckpt["rng"].pop("device")                      # written before the RNG state named its device
    ckpt["config"]["training"].pop("deterministic")
    torch.save(ckpt, path)
    model, loaded = load_model(path)
    assert loaded["epoch"] == 1 and isinstance(model, torch.nn.Module)
    history = fit(_model(), _x(), epochs=2, batch_size=16, lr=1e-3, reconstruction="bernoulli",
                  kl="closed-form", beta=1.0, binarize="none", drop_last=False, device="cpu",
                  progress=False, checkpoint=path, resume=True)
    assert len(history.epochs) == 2 and load_checkpoint(path)["version"] == 2


# --------------------------------------------------------------------------- data loss

def test_a_second_run_into_a_locked_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom vae_course.checkpoints import run_lock\n"
                               f"with run_lock({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out = _main(capsys, "train", "--recipe", "pytorch-mlp", "--subset", "64", "--epochs", "1",
                          "--device", "cpu", "--no-progress", "--out", run)
        assert code == 1 and "another training run is writing to" in out.err
        assert not (run / "checkpoint.pt").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with run_lock(run), run_lock(run):  # free again, and re-entrant within one process
        pass


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = _checkpoint(tmp_path)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 512 vs 448")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as info:
        save_checkpoint(path, model=_model())
    assert info.value.errno == errno.ENOSPC and "previous checkpoint there is intact" in str(info.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_resume_with_another_dataset_or_subset_is_refused(tmp_path, capsys, fashion_dir, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    run = tmp_path / "run"
    common = ("train", "--recipe", "pytorch-mlp", "--epochs", "1", "--device", "cpu", "--no-progress",
              "--dataset", "fashion-mnist", "--out", run)
    assert _main(capsys, *common, "--subset", "64")[0] == 0
    code, out = _main(capsys, *common[:-4], "--epochs", "2", "--dataset", "fashion-mnist", "--out", run,
                      "--subset", "128", "--resume")
    assert code == 1 and "trained with subset 64, not 128" in out.err and "--subset 64" in out.err
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1


def test_a_run_that_cannot_form_a_batch_leaves_no_checkpoint_behind(tmp_path, capsys, fashion_dir, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    run = tmp_path / "run"
    args = ("train", "--recipe", "matlab-2022", "--subset", "1", "--epochs", "1", "--device", "cpu",
            "--dataset", "fashion-mnist", "--no-progress", "--out", run)
    code, out = _main(capsys, *args)
    assert code == 1 and "batch_size" in out.err
    assert not (run / "checkpoint.pt").exists()  # so the same command can be rerun with a larger --subset


def test_resume_from_a_checkpoint_without_optimizer_state_says_so(tmp_path):
    path = tmp_path / "weights-only.pt"
    save_checkpoint(path, model=_model())
    with pytest.raises(CheckpointError, match="holds no optimizer or rng state"):
        fit(_model(), _x(), epochs=2, batch_size=16, lr=1e-3, reconstruction="bernoulli", kl="closed-form",
            beta=1.0, binarize="none", drop_last=False, device="cpu", progress=False, checkpoint=path,
            resume=True)


# --------------------------------------------------------------------------- the command line

def test_out_naming_a_file_and_tilde_paths(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    code, out = _main(capsys, "train", "--recipe", "tf-cvae", "--out", a_file)
    assert code == 1 and "is a file, not a folder" in out.err and a_file.read_text() == "keep me"
    args = cli.build_parser().parse_args(["train", "--recipe", "tf-cvae", "--out=~/vae-runs/x"])
    assert args.out == Path.home() / "vae-runs" / "x"


def test_read_only_output_is_one_clear_line(tmp_path, capsys, monkeypatch):
    path = _checkpoint(tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "samples.png"))
    monkeypatch.setattr(os, "replace", read_only)
    code, out = _main(capsys, "generate", path, "--n", "4", "--out", tmp_path / "samples.png")
    assert code == 1 and "Read-only file system" in out.err and "samples.png" in out.err


def test_generate_refuses_an_unviewable_number_of_images(tmp_path, capsys):
    path = _checkpoint(tmp_path)
    code, out = _main(capsys, "generate", path, "--n", "200000", "--out", tmp_path / "x.png")
    assert code == 1 and "--n must be from 1 to 10000" in out.err and not (tmp_path / "x.png").exists()
    code, out = _main(capsys, "generate", path, "--n", "1500", "--out", tmp_path / "ok.png")
    assert code == 0 and (tmp_path / "ok.png").stat().st_size > 0  # decoded in two batches


def test_ctrl_c_in_any_command_exits_130_without_a_traceback(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setitem(cli.COMMANDS, "data", interrupted)
    code, out = _main(capsys, "data", "download")
    assert code == 130 and "interrupted" in out.err


def test_evaluate_json_never_prints_nan(tmp_path, capsys, fashion_dir, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", model=model,
                    config={"model": model.config, "training": {"reconstruction": "bernoulli"},
                            "dataset": "fashion-mnist"})
    code, out = _main(capsys, "evaluate", tmp_path / "nan.pt", "--limit", "8", "--json", "--device", "cpu")
    assert code == 0
    results = json.loads(out.out)  # strict JSON: no NaN tokens
    assert results["test_loss"] is None and "not finite" in out.err


def test_evaluate_passes_the_labels_a_conditional_checkpoint_needs(tmp_path, capsys, fashion_dir, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    torch.manual_seed(0)
    model = build_model("cvae-mlp", hidden=[8], latent_dim=2)
    save_checkpoint(tmp_path / "cvae.pt", model=model,
                    config={"model": model.config, "training": {"reconstruction": "bernoulli"},
                            "dataset": "fashion-mnist"})
    code, out = _main(capsys, "evaluate", tmp_path / "cvae.pt", "--limit", "16", "--device", "cpu")
    assert code == 0 and "test_loss" in out.out


# --------------------------------------------------------------------------- the API

def test_api_misuse_gets_clear_errors():
    model, x = _model(), _x(8)
    for fn in (lambda: evaluate_elbo(model, x, reconstruction="bernoulli", kl="closed-form", batch_size=-1),
               lambda: reconstruction_errors(model, x, batch_size=0),
               lambda: encode_means(model, x, batch_size=1.5)):
        with pytest.raises(ValueError, match="batch_size must be a positive whole number"):
            fn()
    with pytest.raises(ValueError, match="sigma must be positive and finite"):
        elbo_terms(model(x), x, reconstruction="gaussian", sigma=float("nan"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(_model(), x * 255, epochs=1, batch_size=4, lr=1e-3, reconstruction="bernoulli",
            kl="closed-form", beta=1.0, binarize="none", drop_last=False, device="cpu", progress=False)
