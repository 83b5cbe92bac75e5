"""benchmarks/gpu.py, every GPU measurement in one command: it refuses a device the machine
lacks, a smoke run goes through every step and writes every file (on the CPU here; on the GPU
where there is one), and a failing step is reported while the others still run."""
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/
from benchmarks import gpu  # noqa: E402

from devices import ACCELERATORS  # noqa: E402
from vae_course.recipes import SOURCE_RECIPES  # noqa: E402

SLOW_ON_A_CPU = {"engine+bf16", "engine+compile", "engine+cudagraphs", "engine+bf16+cudagraphs"}


@pytest.fixture
def mnist(mnist_dir, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATA", str(mnist_dir.parent))
    return mnist_dir


@pytest.fixture
def steps_run(monkeypatch):
    """Every step replaced by one that only records that it ran."""
    ran = []

    def fake(name):
        def step(ctx):
            ran.append(name)
            path = ctx.out / f"{name}.json"
            path.write_text("{}")
            return path
        return step
    for name in gpu.STEPS:
        monkeypatch.setitem(gpu.STEP_FUNCTIONS, name, fake(name))
    return ran


def _summary(folder: Path) -> tuple[dict, str]:
    (path,) = folder.glob("gpu-*.json")
    return json.loads(path.read_text()), path.stem.removeprefix("gpu-")


def test_a_device_the_machine_lacks_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys, steps_run):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "--device cuda" in message and "CUDA is not available" in message
    assert "--device mps" in message and "--smoke --device cpu" in message  # what to do instead
    assert "use device='auto'" not in message  # pick_device's advice does not apply to this script
    assert steps_run == [] and list(tmp_path.iterdir()) == []

    assert gpu.main(["--device", "cpu", "--out", str(tmp_path)]) == 2  # the CPU is for --smoke only
    assert "this script measures a GPU" in capsys.readouterr().err
    assert gpu.main(["--smoke", "--device", "cpu", "--out", str(gpu.RESULTS)]) == 2  # never into the results
    assert "choose another --out" in capsys.readouterr().err
    assert steps_run == [] and list(tmp_path.iterdir()) == []


def test_a_failing_step_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys, steps_run):
    def broken(ctx):
        steps_run.append("speed")
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    monkeypatch.setitem(gpu.STEP_FUNCTIONS, "speed", broken)
    assert gpu.main(["--smoke", "--device", "cpu", "--out", str(tmp_path)]) == 1
    assert steps_run == list(gpu.STEPS)
    summary, _ = _summary(tmp_path)
    assert summary["failed"] == ["speed"]
    assert summary["steps"]["speed"]["status"] == "failed"
    assert "RuntimeError: CUDA error" in summary["steps"]["speed"]["error"]
    assert [n for n, r in summary["steps"].items() if r["status"] == "ok"] == ["doctor", "recipe_time",
                                                                             "time_to_quality"]
    out, err = capsys.readouterr()
    assert "failed steps: speed (rerun them with --only speed)" in out
    assert "Traceback" in err and "illegal memory access" in err

    # --only reruns a step; the summary keeps the other steps' records
    monkeypatch.setitem(gpu.STEP_FUNCTIONS, "speed", lambda ctx: steps_run.append("speed again") or ctx.out / "x")
    assert gpu.main(["--smoke", "--device", "cpu", "--out", str(tmp_path), "--only", "speed"]) == 0
    summary, _ = _summary(tmp_path)
    assert steps_run[-1] == "speed again" and summary["failed"] == [] and list(summary["steps"]) == list(gpu.STEPS)


def test_commands_that_fail_fail_their_step_with_the_reason(tmp_path, monkeypatch, capsys):
    """The real steps around fake commands: a doctor check fails, speed exits 2, time to
    quality's arguments are refused; recipe_time gets the smoke arguments and still runs."""
    calls = {}

    def doctor(argv):
        calls["doctor"] = argv
        print(json.dumps({"device": "cpu", "passed": False, "failed": 1, "seconds": 1.0, "checks": [
            {"name": "train tf-cvae", "status": "FAIL", "ok": False, "detail": "loss differs"}]}))
        return 1

    def refused(argv):
        raise SystemExit(2)
    monkeypatch.setattr(gpu.cli, "main", doctor)
    monkeypatch.setattr(gpu.recipe_time, "main", lambda argv: calls.setdefault("recipe_time", argv) and 0)
    monkeypatch.setattr(gpu.speed, "main", lambda argv: calls.setdefault("speed", argv) and 2)
    monkeypatch.setattr(gpu.time_to_quality, "main", refused)
    assert gpu.main(["--smoke", "--device", "cpu", "--out", str(tmp_path)]) == 1
    summary, slug = _summary(tmp_path)
    assert summary["failed"] == ["doctor", "speed", "time_to_quality"]
    steps = summary["steps"]
    assert "1 check(s) failed (train tf-cvae)" in steps["doctor"]["error"]
    assert json.loads((tmp_path / f"doctor-{slug}.json").read_text())["checks"][0]["detail"] == "loss differs"
    assert steps["speed"]["error"] == "benchmarks.speed exited with status 2"
    assert "arguments were refused" in steps["time_to_quality"]["error"]
    assert steps["recipe_time"]["status"] == "ok"
    assert summary["target"]["met"] is None  # a smoke run measures no target
    assert calls["doctor"] == ["doctor", "--device", "cpu", "--json"]
    argv = calls["recipe_time"]
    assert argv[argv.index("--variants") + 1:argv.index("--json")] == ["engine"]
    assert {"--dataset", "mnist", "--epochs", "1", "--subset", "256"} <= set(argv)
    assert set(steps["recipe_time"]["skipped_variants"]) == SLOW_ON_A_CPU
    assert "python -m benchmarks.recipe_time --recipe matlab-2022" in steps["recipe_time"]["command"]
    assert "failed steps: doctor, speed, time_to_quality" in capsys.readouterr().out


def test_the_target_is_the_full_thirty_epochs_in_ten_seconds():
    run = {"epochs": 30, "subset": None, "dataset": "mnist"}
    verdict = gpu.target_verdict({"engine": {**run, "wall_s": 14.2}, "engine+bf16+cudagraphs": {**run, "wall_s": 8.9}},
                                 "NVIDIA H100 80GB HBM3")
    assert verdict["met"] is True and verdict["best_variant"] == "engine+bf16+cudagraphs"
    assert verdict["best_wall_s"] == 8.9 and verdict["wall_s"]["engine"] == 14.2
    assert gpu.target_verdict({"engine": {**run, "wall_s": 10.5}}, "x")["met"] is False
    assert gpu.target_verdict({"engine": {**run, "wall_s": 10.0}}, "x")["met"] is True
    for shortened in ({"epochs": 1}, {"subset": 256}, {"dataset": "fashion-mnist"}):
        assert gpu.target_verdict({"engine": {**run, **shortened, "wall_s": 1.0}}, "x")["met"] is None
    assert gpu.target_verdict({"engine": None}, "x")["met"] is None  # the step failed before it


def test_variants_the_device_cannot_run_are_left_out_with_the_reason():
    names = ["idiomatic", "engine", "engine+bf16", "engine+compile", "engine+cudagraphs"]
    kept, skipped = gpu.usable_variants(names, torch.device("cpu"), smoke=True)
    assert kept == ["idiomatic", "engine"]
    assert "CUDA GPUs only" in skipped["engine+cudagraphs"]
    assert "C++" in skipped["engine+compile"] and "AMX" in skipped["engine+bf16"]
    assert gpu.usable_variants(names, torch.device("cpu"))[0] == ["idiomatic", "engine", "engine+bf16",
                                                                  "engine+compile"]
    kept, skipped = gpu.usable_variants(names, torch.device("mps"))
    assert kept == ["idiomatic", "engine"] and set(skipped) == {"engine+bf16", "engine+compile", "engine+cudagraphs"}
    assert "Inductor" in skipped["engine+compile"]


def _check_smoke_run(folder: Path, device: str) -> None:
    summary, slug = _summary(folder)
    assert summary["smoke"] is True and summary["device"] == device and summary["failed"] == []
    assert list(summary["steps"]) == list(gpu.STEPS)
    for record in summary["steps"].values():
        assert record["status"] == "ok" and record["seconds"] > 0 and record["command"]
        assert (folder / record["file"]).is_file()
    assert summary["target"]["met"] is None and "a smoke run" in summary["target"]["why"]

    doctor = json.loads((folder / f"doctor-{slug}.json").read_text())
    assert doctor["benchmark"] == "doctor" and doctor["passed"] and doctor["failed"] == 0
    assert doctor["hardware"]["device"] == device
    assert {c["status"] for c in doctor["checks"]} == {"PASS", "INFO"}

    recipe = json.loads((folder / f"recipe-time-{slug}.json").read_text())
    assert recipe["runs"] and all(k.startswith("matlab-2022: engine") for k in recipe["runs"])
    for run in recipe["runs"].values():
        assert (run["epochs"], run["subset"], run["dataset"]) == (1, 256, "mnist") and run["wall_s"] > 0

    speed = json.loads((folder / f"speed-{slug}.json").read_text())
    assert {run["recipe"] for run in speed["runs"].values()} == set(SOURCE_RECIPES)
    for run in speed["runs"].values():
        variants = [v["variant"] for v in run["variants"]]
        assert variants[:2] == ["idiomatic", "engine"] and run["steps_per_run"] == 1
        assert run["hardware"]["device"] == device and run["dataset"] == "mnist"

    ttq = json.loads((folder / f"time-to-quality-mnist-{slug}.json").read_text())
    assert ttq["benchmark"] == "time_to_quality" and ttq["settings"]["subset"] == 512
    assert ttq["hardware"]["start"]["device"] == device
    assert {"target", "A", "B", "time_to_target_s", "ratio"} <= set(ttq) and len(ttq["B"]) == 1
    assert ttq["A"]["evaluations"] and ttq["B"][0]["evaluations"]
    assert (folder / ttq["samples_png"]).is_file()


def test_a_smoke_run_on_the_cpu_runs_every_step_and_writes_every_file(tmp_path, mnist, capsys):
    """Tiny on purpose (a few hundred images, a step or an epoch each): about 30 s at one thread."""
    assert gpu.main(["--smoke", "--device", "cpu", "--out", str(tmp_path)]) == 0
    _check_smoke_run(tmp_path, "cpu")
    out = capsys.readouterr().out
    assert "every step ran" in out and "target (matlab-2022, 30 epochs on MNIST in <= 10 s): not measured" in out


@pytest.mark.parametrize("device", ACCELERATORS)  # CUDA or MPS where the machine has one; else skipped
def test_a_smoke_run_on_the_gpu_runs_every_step_and_writes_every_file(device, tmp_path, mnist):
    assert gpu.main(["--smoke", "--device", device, "--out", str(tmp_path)]) == 0
    _check_smoke_run(tmp_path, torch.device(device).type)
