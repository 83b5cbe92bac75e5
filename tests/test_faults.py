"""Fault injection: bad files, hostile checkpoints, concurrent runs, full disks, bad arguments.

Every fault must end in one clear message (naming the file or argument and the fix), lose
nothing and open nothing. Everything here is local: temporary folders, bounded in time.
"""
import dataclasses
import errno
import gzip
import hashlib
import http.server
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import another_process_holding
from vae_course import cli, datasets, downloads
from vae_course.checkpoints import CheckpointError, load_checkpoint, load_model, run_lock, save_checkpoint
from vae_course.data import load_split, load_tensors
from vae_course.datasets import DataFolderError, DatasetUnavailable, locate
from vae_course.downloads import download, verify
from vae_course.evaluate import encode_means, evaluate_elbo, reconstruction_errors
from vae_course.idx import IDXError, read_idx, write_idx
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
    with another_process_holding(run, seconds=30):
        code, out = _main(capsys, "train", "--recipe", "pytorch-mlp", "--subset", "64", "--epochs", "1",
                          "--device", "cpu", "--no-progress", "--out", run)
        assert code == 1 and "another training run is writing to" in out.err
        assert not (run / "checkpoint.pt").exists()
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


# --------------------------------------------------------------------------- data

TINY = {"train-images-idx3-ubyte.gz": (20, 28, 28), "train-labels-idx1-ubyte.gz": (20,),
        "t10k-images-idx3-ubyte.gz": (8, 28, 28), "t10k-labels-idx1-ubyte.gz": (8,)}


def _write_tiny(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng, arrays = np.random.default_rng(7), {}
    for name in TINY:
        arrays[name] = rng.integers(0, 10 if len(TINY[name]) == 1 else 256, TINY[name], dtype=np.uint8)
        write_idx(folder / name, arrays[name])
    return arrays


def _parts(folder: Path) -> list:
    return sorted(p.name for p in folder.rglob("*.part"))


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """'mnist' registered as tiny published files (tmp_path/published, also its file:// mirror);
    no dataset settings from the environment, an empty cache, no system folder."""
    for name in ("VAE_COURSE_DATA", "VAE_COURSE_DATASET", "VAE_COURSE_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path / "share"))
    published = tmp_path / "published"
    arrays = _write_tiny(published)
    gz = {name: (published / name).read_bytes() for name in TINY}
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(
        datasets.DATASETS["mnist"], mirrors=[published.as_uri() + "/"],
        md5={name: hashlib.md5(data).hexdigest() for name, data in gz.items()},
        content_md5={name: hashlib.md5(gzip.decompress(data)).hexdigest() for name, data in gz.items()}))
    return published, arrays


def _mirrors(monkeypatch, *urls):
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(datasets.DATASETS["mnist"],
                                                                        mirrors=list(urls)))


class _Mirror(http.server.BaseHTTPRequestHandler):
    """GET /MODE/NAME: good (the file), drip (one byte every 50 ms, for 10 s at most),
    nolength (Content-Length: abc), gunzipped (the decompressed bytes under the .gz name)."""

    def do_GET(self):
        mode, name = self.path.strip("/").split("/", 1)
        body = (self.server.published / name).read_bytes()
        body = gzip.decompress(body) if mode == "gunzipped" else body
        self.send_response(200)
        self.send_header("Content-Length", "abc" if mode == "nolength" else str(len(body)))
        self.end_headers()
        try:
            if mode != "drip":
                self.wfile.write(body)
                return
            stop = time.monotonic() + 10
            for i in range(len(body)):
                if time.monotonic() > stop:
                    return
                self.wfile.write(body[i:i + 1])
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: as it should
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tiny_mnist, monkeypatch):
    """A mirror on 127.0.0.1 serving the tiny published files; its base URL."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    server.daemon_threads, server.published = True, tiny_mnist[0]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("limit,words", [
    ({"DOWNLOAD_GRACE": 0.3, "DOWNLOAD_MIN_RATE": 1000}, "below the minimum of 1000 bytes/s"),
    ({"DOWNLOAD_DEADLINE": 0.5, "DOWNLOAD_MIN_RATE": 0}, "over the deadline of 0.5 s"),
])
def test_a_slow_drip_mirror_is_given_up_for_the_next_one(tmp_path, mirror, monkeypatch, limit, words):
    for name, value in limit.items():
        monkeypatch.setattr(downloads, name, value)
    dest = tmp_path / "dest"
    _mirrors(monkeypatch, f"{mirror}/drip/")
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable) as caught:
        download(dest=dest, progress=False, files=["test-images", "test-labels"])
    message = str(caught.value)
    assert words in message and "skipped, the mirror was too slow" in message  # for the second file
    assert time.monotonic() - start < 3 and _parts(dest) == []
    _mirrors(monkeypatch, f"{mirror}/drip/", f"{mirror}/good/")
    assert download(dest=dest, progress=False) == dest
    assert verify(root=dest) == {name: True for name in TINY} and _parts(dest) == []
    assert time.monotonic() - start < 6


def test_a_part_file_left_by_kill_9_is_removed_by_the_next_download(tmp_path, mirror):
    dest = tmp_path / "dest"
    script = ("import dataclasses, sys\nfrom vae_course import datasets, downloads\n"
              "info = dataclasses.replace(datasets.DATASETS['mnist'], mirrors=[sys.argv[1]])\n"
              "datasets.DATASETS['mnist'] = info\n"
              "downloads.download('mnist', dest=sys.argv[2], progress=False, files=['test-images'])")
    child = subprocess.Popen([sys.executable, "-c", script, f"{mirror}/drip/", str(dest)])
    try:
        deadline = time.monotonic() + 20
        while not (dest.is_dir() and _parts(dest)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert len(_parts(dest)) == 1  # what kill -9 leaves: the next download cleans it up
    download(dest=dest, progress=False, files=["test-labels"])  # from the file:// mirror
    assert _parts(dest) == [] and sorted(p.name for p in dest.iterdir()) == ["t10k-labels-idx1-ubyte.gz"]


def test_non_numeric_content_length_is_an_unknown_length(tmp_path, mirror, monkeypatch):
    _mirrors(monkeypatch, f"{mirror}/nolength/")
    assert download(dest=tmp_path / "dest", progress=True) == tmp_path / "dest"
    assert verify(root=tmp_path / "dest") == {name: True for name in TINY}


def test_downloaded_files_get_the_umask_permissions(tmp_path, tiny_mnist):
    for umask, mode in ((0o022, 0o644), (0o077, 0o600)):
        old = os.umask(umask)
        try:
            download(dest=tmp_path / oct(umask), progress=False, files=["test-labels"])
        finally:
            os.umask(old)
        assert (tmp_path / oct(umask) / "t10k-labels-idx1-ubyte.gz").stat().st_mode & 0o777 == mode


def test_a_folder_in_the_way_of_a_download_is_named_and_no_part_is_left(tmp_path, tiny_mnist, capsys):
    dest = tmp_path / "dest"
    (dest / "t10k-labels-idx1-ubyte.gz").mkdir(parents=True)
    with pytest.raises(DataFolderError, match="t10k-labels-idx1-ubyte.gz is a folder .*move it away"):
        download(dest=dest, progress=False)
    code, out = _main(capsys, "data", "download", "--root", dest)
    assert code == 1 and "is a folder" in out.err and len(out.err.splitlines()) == 1
    assert _parts(dest) == [] and (dest / "t10k-labels-idx1-ubyte.gz").is_dir()


@pytest.mark.parametrize("when", ["receiving", "checking"])
def test_ctrl_c_during_a_download_leaves_no_part_file(tmp_path, tiny_mnist, capsys, monkeypatch, when):
    class Interrupted:
        headers = {"Content-Length": "1000"}
        chunks = [b"\x1f\x8b partial bytes"]

        def read1(self, n):
            if self.chunks:
                return self.chunks.pop()
            raise KeyboardInterrupt

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    if when == "receiving":
        monkeypatch.setattr(downloads, "_open_url", lambda url, timeout: Interrupted())
    else:
        def interrupted(*args):
            raise KeyboardInterrupt
        monkeypatch.setattr(downloads, "_checksum_ok", interrupted)
    dest = tmp_path / "dest"
    code, out = _main(capsys, "data", "download", "--root", dest)
    assert code == 130 and "interrupted" in out.err
    assert _parts(dest) == [] and list(dest.iterdir()) == []


def test_gunzipped_bytes_under_a_gz_name_are_read_verified_and_kept(tmp_path, tiny_mnist, mirror, monkeypatch,
                                                                    capsys):
    published, arrays = tiny_mnist
    by_hand = tmp_path / "by-hand"  # a user gunzipped the files but kept their names
    by_hand.mkdir()
    for name in TINY:
        (by_hand / name).write_bytes(gzip.decompress((published / name).read_bytes()))
    images, labels = load_split(split="test", root=by_hand, download=False)
    np.testing.assert_array_equal(images, arrays["t10k-images-idx3-ubyte.gz"])
    assert verify(root=by_hand) == {name: True for name in TINY}
    with monkeypatch.context() as patch:  # everything is there: a download must not even try
        patch.setattr(downloads, "_open_url", lambda url, timeout: pytest.fail(f"fetched {url}"))
        assert download(dest=by_hand, progress=False) == by_hand
        for command in ("verify", "download"):
            code, out = _main(capsys, "data", command, "--root", by_hand)
            assert code == 0 and "MISSING" not in out.out and "BAD" not in out.out, out.err
    # a mirror serving the gunzipped bytes under the .gz name: stored, then read
    _mirrors(monkeypatch, f"{mirror}/gunzipped/")
    x, y = load_tensors(split="train")
    assert torch.equal(y, torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"]).long())
    # and the other way round: gzip data under a name without .gz
    (tmp_path / "packed").write_bytes((published / "t10k-labels-idx1-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "packed"), arrays["t10k-labels-idx1-ubyte.gz"])


@pytest.mark.parametrize("setting", ["nothing", "a file"])
def test_vae_course_data_pointing_at_nothing_or_a_file_is_an_error(tmp_path, tiny_mnist, monkeypatch, capsys,
                                                                  setting):
    target = tmp_path / "no-such-folder"
    if setting == "a file":
        target = tmp_path / "notes.txt"
        target.write_text("not data")
    _write_tiny(datasets.cache_dir() / "mnist")  # a copy elsewhere must not silently stand in
    monkeypatch.setenv("VAE_COURSE_DATA", str(target))
    words = "no such folder" if setting == "nothing" else "is a file, not a folder"
    with pytest.raises(DataFolderError, match=words) as caught:
        load_tensors(split="test")
    assert "$VAE_COURSE_DATA" in str(caught.value) and str(target) in str(caught.value)
    checkpoint = _checkpoint(tmp_path)
    for args in (["data", "info"], ["data", "verify"], ["data", "download"], ["evaluate", checkpoint],
                 ["train", "--recipe", "pytorch-mlp", "--subset", "32", "--out", tmp_path / "run"]):
        code, out = _main(capsys, *args)
        last = out.err.strip().splitlines()[-1]
        assert code == 1 and "$VAE_COURSE_DATA" in last and words in last, (args, out.err)


def test_a_partial_folder_is_one_answer_for_info_verify_and_loading(tmp_path, tiny_mnist, monkeypatch, capsys):
    published, arrays = tiny_mnist
    _write_tiny(datasets.cache_dir() / "mnist")  # complete, but later in the search
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (partial / name).write_bytes((published / name).read_bytes())
    monkeypatch.setenv("VAE_COURSE_DATA", str(partial))
    np.testing.assert_array_equal(load_split(split="test")[0], arrays["t10k-images-idx3-ubyte.gz"])
    for load in (lambda: load_split(split="train"), lambda: locate(download=False)):
        with pytest.raises(DatasetUnavailable, match=f"{re.escape(str(partial))} .*is missing train-images"):
            load()
    assert verify() == {"train-images-idx3-ubyte.gz": None, "train-labels-idx1-ubyte.gz": None,
                        "t10k-images-idx3-ubyte.gz": True, "t10k-labels-idx1-ubyte.gz": True}
    code, out = _main(capsys, "data", "info")
    assert code == 0 and f"{partial} ($VAE_COURSE_DATA) holds t10k" in out.out
    code, out = _main(capsys, "data", "verify")
    assert code == 1 and f"folder  {partial}" in out.out and f"--root {partial}" in out.err
    code, out = _main(capsys, "data", "download", "--root", partial)
    assert code == 0 and verify() == {name: True for name in TINY}


def test_idx_files_numpy_cannot_hold_and_damaged_gzip_name_file_and_offset(tmp_path, capsys):
    deep = tmp_path / "deep-idx"
    deep.write_bytes(struct.pack(">BBBB", 0, 0, 8, 65) + struct.pack(">65I", *[1] * 65) + b"x")
    with pytest.raises(IDXError, match="at byte offset 3: 65 dimensions: a numpy array can have at most"):
        read_idx(deep)
    packed = gzip.compress(struct.pack(">BBBBI", 0, 0, 0x0C, 1, 40_000)
                           + np.arange(40_000, dtype=">u4").tobytes(), mtime=0)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[:len(packed) // 2])
    with pytest.raises(IDXError) as caught:
        read_idx(cut)
    assert caught.value.offset == len(packed) // 2 and str(cut) in str(caught.value)
    assert "cut short" in str(caught.value) and "download it again" in str(caught.value)
    flipped = bytearray(packed)
    where = len(flipped) // 3
    flipped[where] ^= 0x55
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(IDXError) as caught:
        read_idx(damaged)
    assert where <= caught.value.offset < len(flipped)  # found where it is, or after: never before
    assert f"{damaged}: at byte offset {caught.value.offset}: the gzip data is damaged" in str(caught.value)
