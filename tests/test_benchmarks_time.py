"""The logic of benchmarks/time_to_quality.py and benchmarks/whole_process.py (tiny, no timing)."""
import cProfile
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/
from benchmarks import time_to_quality as ttq  # noqa: E402
from benchmarks import whole_process as wp  # noqa: E402

from vae_course.models import build_model  # noqa: E402
from vae_course.train import fit  # noqa: E402

TARGET = {"mse": 0.02, "fd": 220.0}


def test_on_target_means_every_yardstick_at_or_below_the_threshold():
    assert ttq.meets({"mse": 0.02, "fd": 220.0}, TARGET)
    assert not ttq.meets({"mse": 0.01, "fd": 220.1}, TARGET)
    assert not ttq.meets({"mse": 0.021, "fd": 100.0}, TARGET)
    evaluations = [{"images": n, "scores": s} for n, s in
                   ((6000, {"mse": 0.03, "fd": 300}), (12000, {"mse": 0.01, "fd": 230}),
                    (18000, {"mse": 0.015, "fd": 210}), (24000, {"mse": 0.01, "fd": 200}))]
    assert ttq.first_on_target(evaluations, TARGET)["images"] == 18000
    assert ttq.first_on_target(evaluations[:2], TARGET) is None


def test_images_seen_counts_the_partial_batch_of_each_epoch():
    # 100 images in batches of 32: steps of 32, 32, 32 and 4 images per epoch.
    assert [ttq.images_seen(i, 4, 32, 100) for i in (1, 3, 4, 5, 8)] == [32, 96, 100, 132, 200]


def test_estimates_and_epoch_times():
    assert ttq.estimated_time_to_target(30, [10.0, 12.0, 11.0]) == 330.0
    assert ttq.epoch_seconds([{"train_seconds": 10.0}, {"train_seconds": 21.0}, {"train_seconds": 33.5}]) == \
        [10.0, 11.0, 12.5]


def test_the_clock_leaves_the_evaluations_out(monkeypatch):
    now = iter([0.0, 5.0, 7.0, 12.0, 13.0])  # start; eval 1 from 5 to 7; eval 2 from 12 to 13
    monkeypatch.setattr(ttq.time, "perf_counter", lambda: next(now))
    clock = ttq.Clock()
    assert clock.evaluate(lambda: {"a": 1}) == (5.0, {"a": 1}, 2.0)
    assert clock.evaluate(lambda: {"a": 2}) == (10.0, {"a": 2}, 1.0)


class FakeYardsticks:
    """Scores from a list, one per call: the watch's logic without a feature network."""

    def __init__(self, scores):
        self.scores, self.calls = list(scores), 0

    def __call__(self, model):
        self.calls += 1
        return self.scores.pop(0)


def _fit_with_watch(scores, every):
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16], latent_dim=2)
    x = torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    watch = ttq.QualityWatch(FakeYardsticks(scores), TARGET, every, 32, len(x), ttq.Clock())
    stopped = False
    try:
        fit(model, x, epochs=2, batch_size=32, lr=1e-3, reconstruction="bernoulli", kl="closed-form", beta=1.0,
            binarize="none", drop_last=False, device="cpu", progress=False, callbacks=[watch])
    except ttq.TargetReached:
        stopped = True
    return watch, stopped


def test_the_watch_evaluates_on_its_cadence_and_stops_fit_on_target():
    scores = [{"mse": 0.1, "fd": 500.0}, {"mse": 0.01, "fd": 200.0}, {"mse": 0.0, "fd": 0.0}]
    watch, stopped = _fit_with_watch(scores, every=40)
    assert stopped
    assert [e["images"] for e in watch.evaluations] == [64, 96]  # the first steps at or past 40, 80
    assert watch.evaluations[-1]["scores"] == {"mse": 0.01, "fd": 200.0}


def test_the_watch_scores_the_last_step_when_the_target_is_never_reached():
    watch, stopped = _fit_with_watch([{"mse": 1.0, "fd": 999.0}] * 10, every=150)
    assert not stopped
    assert [e["images"] for e in watch.evaluations] == [164, 200]  # past 150, and the run's end


def test_on_a_gpu_the_watch_scores_where_fit_has_read_the_losses_back():
    """fit reads losses back every report_every steps on a GPU and then calls the callback for
    each of them, the weights being the block's last step's: the watch scores only there."""
    from types import SimpleNamespace

    # 10 steps per epoch of 32 images (320 images), fit reading back every 4 steps and at the epoch's end
    watch = ttq.QualityWatch(FakeYardsticks([{"mse": 1.0, "fd": 999.0}] * 10), TARGET, 64, 32, 320,
                             ttq.Clock(), report_every=4)
    for iteration in range(1, 21):
        watch.on_iteration(SimpleNamespace(iteration=iteration, iterations_per_epoch=10, epochs=2, model=None))
    # due at 64 images (step 2): scored at step 4 (128); due at 192 and 256: once, at step 8; 320:
    # step 10, the epoch's end; 384: step 14 (448); 512: step 18 (576); 640: step 20, the run's end.
    assert [e["images"] for e in watch.evaluations] == [128, 256, 320, 448, 576, 640]
    cpu = ttq.QualityWatch(FakeYardsticks([{"mse": 1.0, "fd": 999.0}] * 20), TARGET, 64, 32, 320, ttq.Clock())
    for iteration in range(1, 21):
        cpu.on_iteration(SimpleNamespace(iteration=iteration, iterations_per_epoch=10, epochs=2, model=None))
    assert [e["images"] for e in cpu.evaluations] == list(range(64, 641, 64))  # the CPU: at every due step


def test_rounds_alternate_the_order():
    assert wp.round_orders(["a", "b", "c"], 3) == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]


def test_ratios_are_taken_round_by_round():
    summary = wp.summarize({"plain": [10.0, 12.0, 11.0], "vae-course": [5.0, 4.0, 11.0]}, "plain", ["vae-course"])
    assert summary["plain"]["median_s"] == 11.0
    assert summary["vae-course"]["ratio_plain_over_this"] == 2.0  # median of 2, 3, 1
    assert summary["vae-course"]["ratio_range"] == [1.0, 3.0]


def test_the_breakdown_sums_each_phase_once_and_keeps_the_rest(tmp_path):
    module = tmp_path / "plain_train.py"
    module.write_text("def spin(n):\n    return sum(i * i for i in range(n))\n"
                      "def read_idx_gz():\n    return spin(20000)\n"
                      "def train_epoch():\n    return spin(80000)\n"
                      "def test_epoch():\n    return spin(20000)\n"
                      "def save_checkpoint():\n    return spin(20000)\n"
                      "def main():\n    read_idx_gz(); train_epoch(); test_epoch(); save_checkpoint(); spin(5000)\n")
    spec = importlib.util.spec_from_file_location("plain_train_for_test", module)
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    profiler = cProfile.Profile()
    profiler.runcall(plain.main)
    profiler.dump_stats(tmp_path / "run.prof")
    seconds = wp.breakdown(tmp_path / "run.prof", wp.PHASES["plain"])
    phases = ["imports", "data loading", "training", "test evaluation", "checkpoint writing", "other"]
    assert set(seconds) == {"total_s", *phases}
    assert all(seconds[p] > 0 for p in ("data loading", "training", "test evaluation", "checkpoint writing"))
    assert sum(seconds[p] for p in phases) == pytest.approx(seconds["total_s"], abs=5e-3)


def test_the_report_tables_read_the_results_files():
    from benchmarks import report
    evaluation = {"images": 6000, "train_seconds": 3.0, "scores": {"mse": 0.03, "fd": 300.0}, "eval_seconds": 2.0}
    run = {"recipe": "course-fast", "loop": "fit", "eval_every_images": 6000, "evaluations": [evaluation],
           "reached": False, "eval_seconds_total": 2.0}
    hit = {**run, "reached": True, "time_to_target_s": 3.0, "images_to_target": 6000,
           "at_target": {"mse": 0.01, "fd": 200.0}}
    estimated = {**run, "recipe": "matlab-2022", "estimated": {"time_to_target_s": 600.0}}
    text = report.time_to_quality_markdown({"target": {"mse": 0.02, "fd": 220.0, "source": "shipped"},
                                            "A": estimated, "B": [hit, run]})
    assert "600 s (estimated)" in text and "| B, run 1 | `course-fast`, fit | 3.0 s | 6,000 |" in text
    assert "not reached" in text
    whole = {"runs": {"plain": {"median_s": 8.0}, "vae-course": {"median_s": 4.0, "ratio_plain_over_this": 2.0,
                                                               "ratio_range": [1.5, 2.5]}},
             "breakdown": {"plain": {"total_s": 10.0, "imports": 2.0, "data loading": 1.0, "training": 5.0,
                                     "test evaluation": 1.0, "checkpoint writing": 0.5, "other": 0.5}}}
    assert "| vae-course | 4.00 s | 2.00 (1.50–2.50) |" in report.whole_process_markdown(whole)
    assert "| training | 5.00 s (50 %) |" in report.breakdown_markdown(whole)
