"""Quality: train every recipe on one dataset and score it, next to what its source reported.

    python -m benchmarks.quality                                  # full length (hours on a CPU)
    python -m benchmarks.quality --epochs 1 --subset 2000 --iwae-images 16   # smoke test, minutes
    python -m benchmarks.quality --dataset mnist --shipped        # score the shipped weights

``--shipped`` scores the weights the package ships (``vae_course.pretrained``) instead of
training the full-length runs again: they are exactly those runs (seed 0, all the data, the
recipe's epochs), trained where their manifest entry says. Only the course recipe's
milestones (below) are trained.

Resumable: each recipe trains into ``<work>/<recipe>/checkpoint.pt`` (``train_recipe(out=...,
resume=True)``) and its scores go into the JSON file as soon as they exist, so running the
same command again continues where it stopped and skips what is done.

For every recipe (the four sources and ``course``) it reports:

- ``own_metric``: the recipe's own loss on the test set, computed the way its source does
  (``evaluate_elbo`` with the recipe's reconstruction term, KL estimator, beta and
  binarization), next to ``source_reported``, what the source showed (on MNIST);
- ``reconstruction_mse``: per-image mean squared error of ``model.reconstruct`` on the test
  images, fed as the model was trained (binarized for a binarizing recipe);
- ``frechet_distance``: sample quality, the Fréchet distance between real test images and
  generated images (decoder means of prior draws) in the 128-d penultimate-layer features of
  a small CNN classifier trained on the same dataset (trained once, cached);
  ``feature_net.frechet_distance_train_vs_test`` is the floor: real images against real images;
- ``iwae_nll_nats`` (Bernoulli recipes only): ``-log p(x)`` estimated with the IWAE bound,
  ``k`` importance samples, on the first ``--iwae-images`` test images thresholded at 0.5;
- ``train_seconds``: training wall time (the sum over epochs, across resumed sessions), and
  the hardware.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script: python benchmarks/quality.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, read_json, write_json
from benchmarks.flops import training_flops_per_image
from benchmarks.frechet import frechet_distance_of_features
from benchmarks.report import YARDSTICKS, yardstick
from vae_course import data
from vae_course.data import Batches
from vae_course.datasets import DATASETS, cache_dir
from vae_course.evaluate import evaluate_elbo, iwae_log_likelihood, reconstruction_errors
from vae_course.recipes import SOURCE_RECIPES, get_recipe
from vae_course.devices import pick_device
from vae_course.rng import seed_everything
from vae_course.train import train_recipe

RECIPES = (*SOURCE_RECIPES, "course")
FEATURE_DIM = 128


# --------------------------------------------------------------------------- the feature network

class FeatureNet(nn.Module):
    """A small CNN classifier; its penultimate layer (128 ReLU units) is the feature space."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, FEATURE_DIM), nn.ReLU(),
        )
        self.classify = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate-layer features ``(N, 128)`` of images ``(N, 1, 28, 28)`` in [0, 1]."""
        self.eval()
        device = next(self.parameters()).device
        return torch.cat([self.features(x[i:i + batch_size].to(device)).cpu()
                          for i in range(0, len(x), batch_size)])


@torch.no_grad()
def accuracy(net: FeatureNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    net.eval()
    device = next(net.parameters()).device
    correct = sum(int((net(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size].cpu()).sum())
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def feature_net(dataset: str, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                *, epochs: int, seed: int, cache: Path, device: torch.device,
                progress: bool = True) -> tuple[FeatureNet, dict[str, Any]]:
    """The cached classifier for ``dataset`` (trained now if the cache has none): net and facts."""
    (train_x, train_y), (test_x, test_y) = train, test
    path = cache / f"feature-net-{dataset}-n{len(train_x)}-e{epochs}-seed{seed}.pt"
    seed_everything(seed)
    net = FeatureNet().to(device)
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["model"])
        return net.eval(), saved["info"]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = Batches(train_x.to(device), train_y.to(device), batch_size=128, seed=seed)
    for _ in tqdm(range(epochs), desc="feature net", unit="epoch", disable=not progress, leave=False):
        net.train()
        for xb, yb in batches:
            loss = nn.functional.cross_entropy(net(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    info = {"architecture": "conv3x3 32, pool, conv3x3 64, pool, FC 128 (features), FC 10",
            "train_images": len(train_x), "epochs": epochs, "seed": seed,
            "test_accuracy": round(accuracy(net, test_x, test_y), 4), "feature_dim": FEATURE_DIM}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"model": {k: v.cpu() for k, v in net.state_dict().items()}, "info": info}, tmp)
    os.replace(tmp, path)
    return net.eval(), info


# --------------------------------------------------------------------------- scoring one model

def own_metric_name(recipe) -> str:
    """How the recipe's loss reads, e.g. ``half-sse + 1 x KL (closed-form)``."""
    text = f"{recipe.reconstruction} + {recipe.beta:g} x KL ({recipe.kl})"
    if recipe.sigma is not None:
        text += f", sigma={recipe.sigma:g}"
    if recipe.binarize != "none":
        text += f", test images binarized ({recipe.binarize})"
    return text


def model_inputs(recipe, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Test images as the recipe's model saw images in training, and a description."""
    if recipe.binarize == "static":
        return (x > 0.5).to(x.dtype), "binarized at 0.5, as trained"
    return x, "grey levels"


@torch.no_grad()
def generate(model, n: int, seed: int, batch_size: int = 1000) -> torch.Tensor:
    """``n`` decoder means of prior draws, on the CPU, reproducibly (the same on every device)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([model.sample(min(batch_size, n - i), generator=generator).cpu()
                      for i in range(0, n, batch_size)])


def iwae_nll(model, x_binary: torch.Tensor, *, k: int, seed: int, progress: bool) -> float:
    """Mean ``-log p(x)`` (IWAE bound, nats per image) over ``x_binary``, with a progress bar."""
    generator = torch.Generator().manual_seed(seed)  # CPU: the same draws on every device
    step = 8
    values = [iwae_log_likelihood(model, x_binary[i:i + step], k=k, generator=generator)
              for i in tqdm(range(0, len(x_binary), step), desc="IWAE", unit=f"x{step} images",
                            disable=not progress, leave=False)]
    return float(-np.concatenate(values).mean())


def training_tflop(model, recipe, epochs: int, train_images: int) -> float:
    """The training budget: analytic FLOPs per image (benchmarks/flops.py) x images seen, in TFLOP."""
    steps = train_images // recipe.batch_size if recipe.drop_last else math.ceil(train_images / recipe.batch_size)
    seen = epochs * min(train_images, steps * recipe.batch_size)
    example = torch.zeros(1, 1, 28, 28, device=next(model.parameters()).device)
    return round(training_flops_per_image(model, example) * seen / 1e12, 3)


def score(name: str, model, history, test: tuple[torch.Tensor, torch.Tensor], net: FeatureNet,
          real_features: torch.Tensor, *, iwae_k: int, iwae_images: int, seed: int,
          progress: bool, train_images: int) -> dict[str, Any]:
    recipe = get_recipe(name)
    test_x, _ = test
    device = next(model.parameters()).device
    seed_everything(seed)  # the one-sample test ELBO draws z
    own = evaluate_elbo(model, test_x.to(device), reconstruction=recipe.reconstruction, kl=recipe.kl,
                        beta=recipe.beta, sigma=recipe.sigma, binarize=recipe.binarize)
    inputs, described = model_inputs(recipe, test_x)
    errors = reconstruction_errors(model, inputs)
    samples = generate(model, len(real_features), seed)
    fd = frechet_distance_of_features(real_features, net.embed(samples))
    result: dict[str, Any] = {
        "title": recipe.title,
        "arch": recipe.arch,
        "epochs": len(history.epochs),
        "own_metric": {"name": own_metric_name(recipe), "test_loss": own["loss"],
                       "test_reconstruction": own["reconstruction"], "test_kl": own["kl"]},
        "source_reported": ({"text": recipe.reported, "dataset": "MNIST"} if recipe.reported else None),
        "reconstruction_mse": {"mean": float(errors.mean()), "median": float(np.median(errors)),
                               "inputs": described, "images": len(errors)},
        "frechet_distance": {"value": fd, "samples": len(real_features),
                             "generated": "decoder means (sigmoid of the logits) of z ~ N(0, I)"},
        "iwae_nll_nats": None,
        "train_seconds": round(sum(r["seconds"] for r in history.epochs), 1),
        "train_tflop": training_tflop(model, recipe, len(history.epochs), train_images),
        "final_train_loss": history.epochs[-1]["train_loss"] if history.epochs else None,
        "test_loss_per_epoch": [r["test_loss"] for r in history.epochs],
    }
    if recipe.reconstruction == "bernoulli" and iwae_images > 0:
        x_binary = (test_x[:iwae_images] > 0.5).to(test_x.dtype)
        result["iwae_nll_nats"] = {"value": iwae_nll(model, x_binary, k=iwae_k, seed=seed, progress=progress),
                                   "k": iwae_k, "images": len(x_binary),
                                   "test_images": "first N, thresholded at 0.5",
                                   "trained_on_binary_images": recipe.binarize != "none"}
    return result


# --------------------------------------------------------------------------- the whole benchmark

def shipped_run(name: str, dataset: str, device: torch.device):
    """``(model, history, manifest entry)`` of the shipped full-length run of ``name``: one read
    of the manifest, each file still checked against its SHA-256."""
    from vae_course.pretrained_models import history_from, manifest, model_from
    entry = manifest()["models"][f"{name}/{dataset}"]  # main() checked that it ships
    return model_from(entry, device=device), history_from(entry), entry


def saved_epochs(folder: Path) -> int:
    """Epochs completed in ``folder/checkpoint.pt`` (0 when there is none)."""
    path = folder / "checkpoint.pt"
    if not path.exists():
        return 0
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), metavar="NAME",
                        help=f"recipes to train and score (default: {' '.join(RECIPES)})")
    parser.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                        help="dataset (default: $VAE_COURSE_DATASET, else mnist)")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epoch count")
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="first N train and N test images only (a smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--fd-samples", type=int, default=10_000,
                        help="real and generated images for the Fréchet distance (default 10000)")
    parser.add_argument("--iwae-k", type=int, default=1000, help="importance samples (default 1000)")
    parser.add_argument("--iwae-images", type=int, default=200,
                        help="test images for the IWAE likelihood (default 200, as published; 0 skips it)")
    parser.add_argument("--classifier-epochs", type=int, default=3,
                        help="epochs of the feature classifier (default 3)")
    parser.add_argument("--work", type=Path, default=None, metavar="DIR",
                        help="checkpoints (default: <vae-course cache>/benchmarks/quality-<dataset>-<subset>-seed<seed>)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="results file (default benchmarks/results/quality-<dataset>.json; "
                             "<work>/quality-<dataset>.json for shortened runs)")
    parser.add_argument("--milestones", nargs="*", type=int, default=[1, 3, 10], metavar="EPOCHS",
                        help="also score the course recipe after these many epochs, to compare it with "
                             "each source at an equal or smaller training budget (default 1 3 10)")
    parser.add_argument("--shipped", action="store_true",
                        help="score the package's shipped weights of each recipe's full-length run "
                             "instead of training it (seed 0, all the data); milestones still train")
    parser.add_argument("--force", action="store_true", help="score again recipes the JSON already has")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print a markdown table of a results file and exit")
    parser.add_argument("--compare", type=Path, default=None, metavar="JSON",
                        help="print how a results file's scores differ from the published ones and exit")
    return parser


def print_comparison(compare: Path, parser: argparse.ArgumentParser) -> None:
    """--compare: how a results file's scores differ from the published ones."""
    mine = read_json(compare)
    if mine is None:
        parser.error(f"--compare {compare}: no such results file; run the benchmark with --json {compare} first")
    if mine.get("benchmark") != "quality":
        parser.error(f"--compare {compare}: not a results file of benchmarks.quality "
                     f"(it has no \"benchmark\": \"quality\"); pass the file that --json wrote")
    published_path = RESULTS / f"quality-{mine['settings']['dataset']}.json"
    published = read_json(published_path)
    if published is None:
        parser.error(f"--compare: no published results at {published_path} to compare with")
    print(f"{compare} against {published_path}:")
    print(compare_report(published, mine))


def open_results(path: Path, settings: dict[str, Any], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The results file to continue, or a fresh one; never one scored with other settings."""
    results = read_json(path) or {}
    has_scores = bool(results.get("recipes")) or any(results.get("milestones", {}).values())
    if has_scores and results.get("settings") != settings:
        differ = ", ".join(f"{key} {results['settings'].get(key)!r} there, {value!r} here"
                           for key, value in settings.items() if results["settings"].get(key) != value)
        parser.error(f"{path} holds results of other settings ({differ}). Run with that file's settings, "
                     f"or write these results elsewhere with --json NEW.json (and --work DIR for fresh checkpoints)")
    if results.get("settings") != settings:
        results = {"benchmark": "quality", "settings": settings, "recipes": {}}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report is not None:
        print(markdown_report(read_json(args.report)))
        return 0
    if args.compare is not None:
        print_comparison(args.compare, parser)
        return 0

    from vae_course.datasets import dataset_name
    args.dataset = dataset_name(args.dataset)
    for name in args.recipes:
        get_recipe(name)
    if args.iwae_images > 0 and args.iwae_k < 1000:
        print(f"note: --iwae-k {args.iwae_k} < 1000 gives a looser bound than the benchmark's", file=sys.stderr)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    progress = not args.no_progress
    device = pick_device(args.device)
    shortened = args.epochs is not None or args.subset is not None
    if args.shipped and (shortened or args.seed != 0):
        parser.error("--shipped scores the shipped full-length runs (seed 0, all the data): "
                     "leave out --epochs, --subset and --seed")
    if args.shipped:
        from vae_course.pretrained_models import available
        missing = [n for n in args.recipes if f"{n}/{args.dataset}" not in available()]
        if missing:
            parser.error(f"--shipped: no shipped weights of {', '.join(missing)} on {args.dataset} "
                         f"(shipped: {', '.join(available())}); train them without --shipped")
    cache = cache_dir() / "benchmarks"
    work = args.work or cache / f"quality-{args.dataset}-{'all' if args.subset is None else f'n{args.subset}'}-seed{args.seed}"
    path = args.json or (work if shortened else RESULTS) / f"quality-{args.dataset}.json"
    settings = {"dataset": args.dataset, "epochs": args.epochs, "subset": args.subset, "seed": args.seed,
                "fd_samples": args.fd_samples, "iwae_k": args.iwae_k, "iwae_images": args.iwae_images,
                "classifier_epochs": args.classifier_epochs, "shortened": shortened,
                **({"shipped": True} if args.shipped else {})}

    results = open_results(path, settings, parser)

    train = data.load_tensors(args.dataset, "train", subset=args.subset)
    test = data.load_tensors(args.dataset, "test", subset=args.subset)
    net, net_info = feature_net(args.dataset, train, test, epochs=args.classifier_epochs, seed=args.seed,
                                cache=cache, device=device, progress=progress)
    n_fd = min(args.fd_samples, len(test[0]), len(train[0]))
    real_features = net.embed(test[0][:n_fd])
    net_info["frechet_distance_train_vs_test"] = frechet_distance_of_features(
        net.embed(train[0][:n_fd]), real_features)
    results["feature_net"] = net_info

    def score_here(name: str, model, history) -> dict[str, Any]:
        return score(name, model, history, test, net, real_features, iwae_k=args.iwae_k,
                     iwae_images=args.iwae_images, seed=args.seed, progress=progress,
                     train_images=len(train[0]))

    def train_and_score(name: str, epochs: int, folder: Path) -> dict[str, Any]:
        """Train (or resume) ``name`` up to ``epochs`` in ``folder``, then score it."""
        model, history = train_recipe(name, dataset=args.dataset, epochs=epochs, subset=args.subset,
                                      device=device, out=folder, resume=True, progress=progress,
                                      seed=args.seed)
        return score_here(name, model, history)

    bar = tqdm(args.recipes, desc="recipes", unit="recipe", disable=not progress)
    for name in bar:
        bar.set_description(f"recipe {name}")
        recipe = get_recipe(name)
        target_epochs = recipe.epochs if args.epochs is None else args.epochs
        scored = results.setdefault("milestones", {}).setdefault(name, {})
        for epochs in sorted(set(args.milestones if name == "course" else ())):
            if epochs >= target_epochs or (str(epochs) in scored and not args.force):
                continue
            # Continue the recipe's own run up to the milestone; if that checkpoint is already
            # past it (an interrupted benchmark), train the milestone in a folder of its own.
            folder = work / name
            if saved_epochs(folder) > epochs:
                folder = work / f"{name}-until-epoch-{epochs}"
            scored[str(epochs)] = {**train_and_score(name, epochs, folder), "hardware": hardware(device)}
            write_json(path, results)
        done = results["recipes"].get(name)
        if done and done.get("epochs") == target_epochs and not args.force:
            continue
        if args.shipped:
            model, history, entry = shipped_run(name, args.dataset, device)
            result = score_here(name, model, history)
            result["trained"] = {"weights": f"vae_course/weights/{entry['file']}",
                                 "hardware": entry["hardware"], "torch": entry["torch"]}
        else:
            result = train_and_score(name, target_epochs, work / name)
        result["hardware"] = hardware(device)  # where it was scored (and trained, unless "trained" says)
        results["recipes"][name] = result
        write_json(path, results)
    bar.close()
    write_json(path, results)
    print(format_summary(results))
    print(f"results: {path}")
    return 0


def format_summary(results: dict[str, Any]) -> str:
    """One line per recipe: own metric, reconstruction MSE, Fréchet distance, IWAE NLL, time."""
    net = results.get("feature_net", {})
    lines = [f"feature net: test accuracy {net.get('test_accuracy')}, FD floor (train vs test) "
             f"{net.get('frechet_distance_train_vs_test', math.nan):.3f}",
             f"{'recipe':12s} {'own test loss':>14s} {'recon MSE':>10s} {'FD':>8s} {'IWAE NLL':>9s} {'train s':>8s}"]
    for name, r in results.get("recipes", {}).items():
        iwae = r["iwae_nll_nats"]["value"] if r.get("iwae_nll_nats") else None
        lines.append(f"{name:12s} {r['own_metric']['test_loss']:14.4f} {r['reconstruction_mse']['mean']:10.4f} "
                     f"{r['frechet_distance']['value']:8.3f} {'-' if iwae is None else f'{iwae:9.2f}':>9s} "
                     f"{r['train_seconds']:8.1f}")
    return "\n".join(lines)


def compare_report(published: dict[str, Any], mine: dict[str, Any]) -> str:
    """Each score of ``mine`` next to the published one and their relative difference.

    This is how a re-run of one recipe is checked against the book's table: on the same
    machine and thread count the scores agree exactly; elsewhere they differ by
    floating-point noise, which shows here as fractions of a percent to a few percent.
    """
    lines = ["| recipe | score | published | this run | difference |", "|---|---|---:|---:|---:|"]
    for name, r in mine.get("recipes", {}).items():
        ref = published.get("recipes", {}).get(name)
        if ref is None:
            lines.append(f"| {name} | (not in the published file) | | | |")
            continue
        if ref.get("epochs") != r.get("epochs"):
            lines.append(f"| {name} | epochs: not comparable | {ref.get('epochs')} | {r.get('epochs')} | |")
            continue
        scores = [("own test loss", ref["own_metric"]["test_loss"], r["own_metric"]["test_loss"])]
        scores += [(label, yardstick(ref, key), yardstick(r, key)) for key, label in YARDSTICKS]
        for label, a, b in scores:
            if a is None or b is None:
                continue
            lines.append(f"| {name} | {label} | {a:.4g} | {b:.4g} | {100 * (b - a) / abs(a):+.2f} % |")
    return "\n".join(lines)


def markdown_report(results: dict[str, Any]) -> str:
    """A markdown table of a quality-*.json file, for the book."""
    settings, net = results["settings"], results.get("feature_net", {})
    floor = net.get("frechet_distance_train_vs_test", math.nan)
    lines = [f"Dataset {settings['dataset']}; feature classifier test accuracy {net.get('test_accuracy')}; "
             f"Fréchet distance of real training vs real test images {floor:.2f}."]
    trained = {r["trained"]["hardware"] for r in results.get("recipes", {}).values() if "trained" in r}
    if trained:
        scorers = "; ".join(sorted({r["hardware"]["cpu"] for r in results.get("recipes", {}).values()}))
        lines[0] += (f" Full-length rows: the package's shipped weights, trained on {'; '.join(sorted(trained))} "
                     f"and scored on {scorers}; the course's shorter runs were trained and scored on "
                     f"{scorers}.")
    lines += ["",
             "| recipe | epochs | own test loss (its source's units) | reconstruction MSE | "
             "Fréchet distance | IWAE NLL (nats) | training time |",
             "|---|---:|---|---:|---:|---:|---:|"]
    rows = [(name, r) for name, r in results.get("recipes", {}).items()]
    for name, scored in results.get("milestones", {}).items():
        target = results.get("recipes", {}).get(name, {}).get("epochs")
        rows += [(f"{name}, after {e} epoch{'' if int(e) == 1 else 's'}{'' if target is None else f' of {target}'}", r)
                 for e, r in sorted(scored.items(), key=lambda item: int(item[0]))]
    for name, r in rows:
        iwae = r.get("iwae_nll_nats")
        iwae_text = f"{iwae['value']:.1f} (k={iwae['k']})" if iwae else "–"
        own = r["own_metric"]
        lines.append(f"| {name} | {r['epochs']} | {own['test_loss']:#.4g} | "
                     f"{r['reconstruction_mse']['mean']:.4f} | {r['frechet_distance']['value']:.2f} | "
                     f"{iwae_text} | {r['train_seconds'] / 60:.0f} min |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
