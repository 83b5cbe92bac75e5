"""Time to quality (MLPerf-style): how long each contestant trains until it matches a target.

    python -m benchmarks.time_to_quality --threads 2                 # the published run (MNIST)
    python -m benchmarks.time_to_quality --a-epochs 2 --json /tmp/ttq.json   # A measured, then estimated
    python -m benchmarks.time_to_quality --device cuda               # on a GPU (benchmarks/gpu.py runs it)

The target is what the ``matlab-2022`` recipe reaches after its 30 epochs, on the common
yardsticks of ``benchmarks/quality.py``: the test reconstruction MSE per pixel and the
Fréchet distance of 10 000 samples.  The shipped weights
(``vae_course.pretrained("matlab-2022", "mnist")``, trained 30 epochs with seed 0) are that
model: they are scored here with the same code, and their scores are the thresholds.  A
contestant reaches the target at the first evaluation where both of its scores are at or
below the thresholds.

- **A**: the ``matlab-2022`` recipe trained the idiomatic PyTorch way
  (``benchmarks.speed.train_idiomatic``: per-item ``Dataset``, ``DataLoader``), evaluated
  after every epoch, up to its 30 epochs.  With ``--a-epochs K`` it trains only K epochs and
  its time to target is *estimated* as (epochs the shipped run needed) x (measured time per
  epoch); the results file says which.
- **B**: the course's fast recipe (``course-fast``) through ``vae_course.train.fit``,
  evaluated every ``--b-every`` images (a callback) and stopped when it reaches the target.

Training time excludes the evaluations (their time is recorded separately); both
contestants run in this process on this machine, after a few untimed warm-up steps of each
loop, B before and after A, so a machine that gets busier or quieter shows as a difference
between B's two runs.

``--device`` (default ``cpu``) moves the whole measurement onto a GPU: the feature classifier,
the shipped target model, both contestants and their evaluations.  On a GPU ``fit`` reads the
losses back every ``SYNC_EVERY`` steps and calls B's callback then, so B is scored at the last
step of each such block (where the weights are), and the clock waits for the device before it
reads the time.  The results file is then ``time-to-quality-mnist-<hardware>.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/time_to_quality.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, hardware_slug, synchronize, write_json
from benchmarks.frechet import frechet_distance_of_features
from benchmarks.quality import feature_net, generate, iwae_nll
from benchmarks.speed import Variant, train_idiomatic
from vae_course import data
from vae_course.datasets import cache_dir
from vae_course.devices import pick_device
from vae_course.evaluate import reconstruction_errors
from vae_course.models import build_model
from vae_course.pretrained_models import manifest, pretrained
from vae_course.recipes import get_recipe
from vae_course.rng import seed_everything
from vae_course.train import SYNC_EVERY, fit

SOURCE, FAST = "matlab-2022", "course-fast"
FD_SAMPLES = 10_000


class TargetReached(Exception):
    """Raised by :class:`QualityWatch` to stop ``fit`` at the first evaluation on target."""


def meets(scores: dict[str, float], target: dict[str, float]) -> bool:
    """True when every yardstick of ``scores`` is at or below the target's (lower is better)."""
    return all(scores[key] <= target[key] for key in target)


def first_on_target(evaluations: list[dict[str, Any]], target: dict[str, float]) -> dict[str, Any] | None:
    """The first evaluation that meets the target (None if none does)."""
    return next((e for e in evaluations if meets(e["scores"], target)), None)


def images_seen(iteration: int, iterations_per_epoch: int, batch_size: int, train_images: int) -> int:
    """Images trained on after ``iteration`` steps (1-based, over the run), the last
    partial batch of each epoch counted as it is (``drop_last=False``)."""
    epochs, step = divmod(iteration, iterations_per_epoch)
    return epochs * train_images + min(step * batch_size, train_images)


def estimated_time_to_target(epochs_needed: int, epoch_seconds: list[float]) -> float:
    """A's time to target when it is not trained to the end: epochs x median measured epoch."""
    return epochs_needed * statistics.median(epoch_seconds)


class Yardsticks:
    """The scores of ``benchmarks/quality.py``: reconstruction MSE per pixel (decoder mean of
    the posterior mean, test images as grey levels) and the Fréchet distance of 10 000 decoder
    means of prior draws to the test images, in the feature classifier's space."""

    def __init__(self, test_x: torch.Tensor, net, seed: int = 0):
        self.test_x, self.net, self.seed = test_x, net, seed
        self.real = net.embed(test_x[:FD_SAMPLES])

    def __call__(self, model) -> dict[str, float]:
        mse = float(reconstruction_errors(model, self.test_x).mean())
        fd = frechet_distance_of_features(self.real, self.net.embed(generate(model, len(self.real), self.seed)))
        return {"mse": mse, "fd": fd}


class Clock:
    """Wall time since ``start()``, less the time spent in evaluations.  On a GPU (``device``)
    it waits for the queued training work before it reads the time."""

    def __init__(self, device: torch.device | None = None):
        self.device = device
        synchronize(device)
        self.started, self.evaluating = time.perf_counter(), 0.0

    def evaluate(self, score: Callable[[], dict]) -> tuple[float, dict, float]:
        """Training seconds so far, the scores, and how long scoring took."""
        synchronize(self.device)
        begun = time.perf_counter()
        training = begun - self.started - self.evaluating
        scores = score()
        took = time.perf_counter() - begun
        self.evaluating += took
        return training, scores, took


class QualityWatch:
    """A ``fit`` callback: scores the model every ``every`` images and at the run's last step,
    and stops the run (:class:`TargetReached`) at the first evaluation on target.

    ``report_every``: how many steps ``fit`` runs between two read-backs of the losses (1 on
    the CPU; ``SYNC_EVERY`` on a GPU), which it then hands to the callbacks one by one while
    the weights are already those of the block's last step.  The watch scores only at such a
    last step (and at each epoch's end, where fit also reads back), so the images it records
    are the images the scored weights have seen."""

    def __init__(self, yardsticks: Yardsticks, target: dict[str, float], every: int, batch_size: int,
                 train_images: int, clock: Clock, report_every: int = 1):
        self.yardsticks, self.target, self.every = yardsticks, target, every
        self.batch_size, self.train_images, self.clock = batch_size, train_images, clock
        self.report_every = report_every
        self.next_at, self.evaluations = every, []

    def on_iteration(self, state) -> None:
        step = (state.iteration - 1) % state.iterations_per_epoch + 1  # within its epoch, 1-based
        if step % self.report_every and step != state.iterations_per_epoch:
            return  # fit has trained past this step already: wait for the step the weights are at
        seen = images_seen(state.iteration, state.iterations_per_epoch, self.batch_size, self.train_images)
        last = state.iteration == state.epochs * state.iterations_per_epoch
        if seen < self.next_at and not last:
            return
        while self.next_at <= seen:
            self.next_at += self.every
        training, scores, took = self.clock.evaluate(lambda: self.yardsticks(state.model))
        self.evaluations.append({"images": seen, "train_seconds": round(training, 2), "scores": scores,
                                 "eval_seconds": round(took, 2)})
        print(f"  B {seen:6d} images  {training:7.1f} s  MSE {scores['mse']:.4f}  FD {scores['fd']:.1f}",
              flush=True)
        if meets(scores, self.target):
            raise TargetReached


def run_fast(train_x: torch.Tensor, yardsticks: Yardsticks, target: dict, every: int, seed: int,
             device: torch.device = torch.device("cpu")) -> tuple:
    """Contestant B: ``course-fast`` through ``fit`` until on target; (record, model)."""
    recipe = get_recipe(FAST)
    seed_everything(seed)
    model = build_model(recipe.arch, **recipe.model_kwargs)
    clock = Clock(device)
    watch = QualityWatch(yardsticks, target, every, recipe.batch_size, len(train_x), clock,
                         report_every=1 if device.type == "cpu" else SYNC_EVERY)  # as fit reads back
    try:
        fit(model, train_x, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
            lr_schedule=recipe.lr_schedule, reconstruction=recipe.reconstruction, kl=recipe.kl,
            beta=recipe.beta, sigma=recipe.sigma, binarize=recipe.binarize, drop_last=recipe.drop_last,
            shuffle=recipe.shuffle, device=device, seed=seed, progress=False, callbacks=[watch])
    except TargetReached:
        pass
    model.eval()
    return _record(recipe, "vae_course.train.fit", every, watch.evaluations, target), model


def run_idiomatic(images, labels, yardsticks: Yardsticks, target: dict, epochs: int, seed: int,
                  device: torch.device = torch.device("cpu")) -> tuple:
    """Contestant A: ``matlab-2022`` in the idiomatic loop, scored after every epoch."""
    recipe = get_recipe(SOURCE)
    seed_everything(seed)
    model = build_model(recipe.arch, **recipe.model_kwargs).to(device)  # as pytorch/examples
    clock, evaluations = Clock(device), []

    def after_epoch(epoch: int) -> bool:
        training, scores, took = clock.evaluate(lambda: yardsticks(model))
        evaluations.append({"images": epoch * (len(images) // recipe.batch_size) * recipe.batch_size,
                            "epoch": epoch, "train_seconds": round(training, 2), "scores": scores,
                            "eval_seconds": round(took, 2)})
        print(f"  A epoch {epoch:2d}  {training:7.1f} s  MSE {scores['mse']:.4f}  FD {scores['fd']:.1f}", flush=True)
        return meets(scores, target)

    train_idiomatic(model, images, labels, recipe=recipe, epochs=epochs, device=device,
                    variant=Variant("idiomatic"), seed=seed, after_epoch=after_epoch)
    model.eval()
    every = (len(images) // recipe.batch_size) * recipe.batch_size
    return _record(recipe, "benchmarks.speed.train_idiomatic (DataLoader)", every, evaluations, target), model


def warm_up(train_x: torch.Tensor, images, labels, seed: int, n: int = 512,
            device: torch.device = torch.device("cpu")) -> None:
    """A few untimed steps of both loops first: the process's one-off costs (the first
    optimizer imports ``torch._dynamo``, oneDNN prepares its kernels; on a GPU the CUDA
    context and cuDNN's kernel choice) then burden neither."""
    for loop in ("fit", "idiomatic"):
        seed_everything(seed)
        model = build_model("matlab-2022", latent_dim=16)
        if loop == "fit":
            fit(model, train_x[:n], epochs=1, batch_size=128, lr=1e-3, reconstruction="bernoulli",
                kl="closed-form", beta=1.0, binarize="none", drop_last=False, device=device, progress=False)
        else:
            train_idiomatic(model.to(device), images[:n], labels[:n], recipe=get_recipe(SOURCE), epochs=1,
                            device=device, variant=Variant("idiomatic"), seed=seed)


def _record(recipe, loop: str, every: int, evaluations: list[dict], target: dict) -> dict[str, Any]:
    hit = first_on_target(evaluations, target)
    return {"recipe": recipe.name, "loop": loop, "eval_every_images": every,
            "evaluations": evaluations, "reached": hit is not None,
            "time_to_target_s": hit["train_seconds"] if hit else None,
            "images_to_target": hit["images"] if hit else None,
            "at_target": hit["scores"] if hit else None,
            "eval_seconds_total": round(sum(e["eval_seconds"] for e in evaluations), 1)}


def epoch_seconds(evaluations: list[dict]) -> list[float]:
    """Training seconds of each epoch, from the cumulative times of per-epoch evaluations."""
    times = [0.0] + [e["train_seconds"] for e in evaluations]
    return [round(b - a, 2) for a, b in zip(times, times[1:])]


def iwae_at_target(model, test_x: torch.Tensor, images: int, k: int, seed: int) -> dict | None:
    """IWAE NLL (nats) of a Bernoulli model at the target, as benchmarks/quality.py measures it."""
    if images <= 0:
        return None
    x_binary = (test_x[:images] > 0.5).to(test_x.dtype)
    return {"value": iwae_nll(model, x_binary, k=k, seed=seed, progress=False), "k": k, "images": images,
            "test_images": "first N, thresholded at 0.5"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--b-every", type=int, default=6_000, metavar="IMAGES",
                        help="evaluate B every this many images (default 6000, ten times an epoch)")
    parser.add_argument("--a-epochs", type=int, default=None, metavar="K",
                        help="train A only K epochs and estimate its time to target (default: up to "
                             "its recipe's 30 epochs, stopping on target)")
    parser.add_argument("--b-runs", type=int, default=2, help="runs of B, around A (default 2)")
    parser.add_argument("--iwae-k", type=int, default=1000)
    parser.add_argument("--iwae-images", type=int, default=200, help="0 skips the IWAE NLL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="first N train and test images only (a smoke test; scores not comparable)")
    parser.add_argument("--note", default="", help="conditions of the run worth stating (stored in the JSON)")
    parser.add_argument("--classifier-epochs", type=int, default=3, help="feature classifier epochs (default 3)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (the default), cuda, cuda:N or mps: where everything is trained and scored")
    parser.add_argument("--json", type=Path, default=None,
                        help="default benchmarks/results/time-to-quality-mnist.json on the CPU, "
                             "time-to-quality-mnist-<hardware>.json on another device")
    parser.add_argument("--samples", type=Path, default=None, metavar="PNG",
                        help="64 samples of each model at the target (default: beside --json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    started = hardware(device)
    if args.json is None:
        args.json = RESULTS / ("time-to-quality-mnist.json" if device.type == "cpu"
                               else f"time-to-quality-mnist-{hardware_slug(started)}.json")

    train = data.load_tensors("mnist", "train", subset=args.subset)
    train_x, test = train[0], data.load_tensors("mnist", "test", subset=args.subset)
    images, labels = (a[:args.subset] for a in data.load_split("mnist", "train"))
    net, net_info = feature_net("mnist", train, test, epochs=args.classifier_epochs, seed=args.seed,
                                cache=cache_dir() / "benchmarks", device=device, progress=False)
    yardsticks = Yardsticks(test[0], net, args.seed)

    shipped = pretrained(SOURCE, "mnist", device=device)
    target = yardsticks(shipped)
    entry = manifest()["models"][f"{SOURCE}/mnist"]
    print(f"target (shipped {SOURCE}, {entry['epochs']} epochs): MSE {target['mse']:.4f}, FD {target['fd']:.1f}")

    warm_up(train_x, images, labels, args.seed, device=device)
    b_runs, models = [], {}
    a_epochs = args.a_epochs or get_recipe(SOURCE).epochs
    for turn in ["B"] + ["A"] + ["B"] * (args.b_runs - 1):
        print(f"contestant {turn}", flush=True)
        if turn == "B":
            record, models["B"] = run_fast(train_x, yardsticks, target, args.b_every, args.seed, device)
            b_runs.append(record)
        else:
            a, models["A"] = run_idiomatic(images, labels, yardsticks, target, a_epochs, args.seed, device)

    a["epoch_seconds"] = epoch_seconds(a["evaluations"])
    if args.a_epochs is not None and not a["reached"]:
        needed = entry["epochs"]  # the shipped run is the target: it got there at its last epoch
        a["estimated"] = {"time_to_target_s": round(estimated_time_to_target(needed, a["epoch_seconds"]), 1),
                          "epochs_needed": needed,
                          "how": f"the shipped matlab-2022 run is the target, reached after its {needed} "
                                 f"epochs; x the median idiomatic epoch time measured here over "
                                 f"{len(a['epoch_seconds'])} epochs"}
    if args.a_epochs is None and not a["reached"]:  # trained its whole recipe and still short of it
        a["lower_bound"] = {"time_to_target_s": a["evaluations"][-1]["train_seconds"],
                            "how": f"A had not reached the target after its recipe's {a_epochs} epochs: "
                                   f"its time to target is at least its {a_epochs}-epoch training time"}
    b_times = [r["time_to_target_s"] for r in b_runs if r["reached"]]
    a_time = a["time_to_target_s"] if a["reached"] else (a.get("estimated") or a.get("lower_bound")
                                                         or {}).get("time_to_target_s")
    b_time = statistics.median(b_times) if len(b_times) == len(b_runs) else None
    result = {
        "benchmark": "time_to_quality", "dataset": "mnist", "note": args.note,
        "settings": {"threads": torch.get_num_threads(), "b_every": args.b_every, "a_epochs": a_epochs,
                     "a_estimated": args.a_epochs is not None, "seed": args.seed,
                     "fd_samples": len(yardsticks.real), "subset": args.subset, "train_images": len(train_x),
                     "classifier_epochs": args.classifier_epochs},
        "target": {**target, "source": f"vae_course.pretrained('{SOURCE}', 'mnist'): the shipped weights, "
                                       f"{entry['epochs']} epochs, seed 0, scored here with the same code",
                   "rule": "a contestant is on target at the first evaluation with MSE <= target MSE "
                           "and FD <= target FD"},
        "feature_net": net_info, "A": a, "B": b_runs,
        "time_to_target_s": {"A": a_time, "B": b_time},
        "ratio": round(a_time / b_time, 2) if a_time and b_time else None,
        "ratio_is_lower_bound": "lower_bound" in a,
        "hardware": {"start": started, "end": hardware(device)},
    }
    if b_time is not None:
        result["B_iwae_nll_at_target"] = iwae_at_target(models["B"], test[0], args.iwae_images, args.iwae_k, args.seed)
    samples = args.samples or args.json.with_name(args.json.stem + "-samples.png")
    save_samples({"target": shipped, "A": models["A"], "B": models["B"]}, samples, args.seed)
    result["samples_png"] = samples.name
    write_json(args.json, result)
    print(f"A {a_time} s, B {b_time} s, ratio {result['ratio']}; results: {args.json}")
    return 0


def save_samples(models: dict, path: Path, seed: int) -> None:
    """One PNG: 16 decoder means of the same prior draws from each model, one row each
    (in the order of ``models``: the target, A, B)."""
    from vae_course.plots import save_image_grid
    rows = [generate(model, 16, seed) for model in models.values()]
    save_image_grid(torch.cat(rows), path, ncols=16, scale=2)


if __name__ == "__main__":
    sys.exit(main())
