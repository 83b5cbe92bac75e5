"""The benchmarks' arithmetic: analytic FLOP counts and the Fréchet distance (fast, no training)."""
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/
from benchmarks.flops import forward_flops, layer_macs, training_flops_per_image  # noqa: E402
from benchmarks.frechet import (frechet_distance, frechet_distance_of_features,  # noqa: E402
                                gaussian_stats, psd_sqrt, trace_sqrt_product)

from vae_course.models import build_model  # noqa: E402

ONE_IMAGE = torch.zeros(1, 1, 28, 28)


# --------------------------------------------------------------------------- FLOPs

def test_conv_flops_by_hand():
    # 3x3 stride-2 'same' conv 1 -> 32 on 28x28: 32*14*14 outputs, each 1*3*3 MACs.
    conv = nn.Conv2d(1, 32, 3, stride=2, padding=1)
    assert forward_flops(nn.Sequential(conv), ONE_IMAGE) == [("0", 2 * 32 * 14 * 14 * 9)]


def test_transposed_conv_counts_input_pixels_times_kernel():
    # 32 -> 1 channels, 28x28 in: every input pixel scatters a 1x3x3 kernel.
    tconv = nn.ConvTranspose2d(32, 1, 3, padding=1)
    x = torch.zeros(2, 32, 28, 28)
    assert layer_macs(tconv, (x,), tconv(x)) == 2 * 32 * 28 * 28 * 9
    # stride 2: the input, not the (4x larger) output, sets the count.
    up = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
    x = torch.zeros(1, 64, 7, 7)
    assert layer_macs(up, (x,), up(x)) == 64 * 7 * 7 * 32 * 9


def test_grouped_conv_and_linear():
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    x = torch.zeros(1, 8, 5, 5)
    assert layer_macs(conv, (x,), conv(x)) == 16 * 5 * 5 * (8 // 4) * 9
    linear = nn.Linear(784, 128)
    x = torch.zeros(3, 784)
    assert layer_macs(linear, (x,), linear(x)) == 3 * 128 * 784


def test_counts_are_per_image_whatever_the_batch():
    model = build_model("matlab-2022")
    assert forward_flops(model, ONE_IMAGE) == forward_flops(model, torch.zeros(5, 1, 28, 28))


def test_matlab_r2022b_model_costs_about_40_mflop_per_image_to_train():
    model = build_model("matlab-2022", latent_dim=16)
    macs = (32 * 14 * 14 * 9            # conv 1 -> 32, stride 2
            + 64 * 7 * 7 * 32 * 9       # conv 32 -> 64, stride 2
            + 64 * 7 * 7 * 32           # FC 3136 -> 2*16
            + 16 * 64 * 7 * 7           # project and reshape 16 -> 3136
            + 64 * 7 * 7 * 64 * 9       # tconv 64 -> 64, 7 -> 14
            + 64 * 14 * 14 * 32 * 9     # tconv 64 -> 32, 14 -> 28
            + 32 * 28 * 28 * 1 * 9)     # tconv 32 -> 1
    assert training_flops_per_image(model, ONE_IMAGE) == 3 * 2 * macs
    assert 38e6 < 3 * 2 * macs < 42e6   # "about 40 MFLOP per image" (MathWorks)


def test_uncounted_layers_with_parameters_raise():
    with pytest.raises(TypeError, match="BatchNorm|1"):
        forward_flops(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)), ONE_IMAGE)


# --------------------------------------------------------------------------- Fréchet distance

def _random_cov(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_identical_gaussians_are_at_distance_zero():
    mu, cov = torch.randn(6, dtype=torch.float64), _random_cov(6, 0)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_closed_form():
    # FD(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2
    fd = frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]),
                          torch.tensor([-2.0]), torch.tensor([[0.25]]))
    assert fd == pytest.approx(3.0 ** 2 + (2.0 - 0.5) ** 2)


def test_diagonal_closed_form():
    s1 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    s2 = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    mu1, mu2 = torch.zeros(3), torch.tensor([1.0, 0.0, -1.0])
    fd = frechet_distance(mu1, torch.diag(s1 ** 2), mu2, torch.diag(s2 ** 2))
    assert fd == pytest.approx(2.0 + float(((s1 - s2) ** 2).sum()))


def test_trace_sqrt_product_agrees_with_an_explicit_square_root():
    c1, c2 = _random_cov(5, 1), _random_cov(5, 2)
    # C1 C2 is not symmetric; its principal square root R satisfies R @ R = C1 C2 and has
    # eigenvalues sqrt(eig(C1 C2)); those eigenvalues are real and positive.
    eigenvalues = torch.linalg.eigvals(c1 @ c2)
    assert eigenvalues.imag.abs().max() < 1e-9
    expected = float(eigenvalues.real.clamp(min=0).sqrt().sum())
    assert trace_sqrt_product(c1, c2) == pytest.approx(expected, rel=1e-9)
    assert trace_sqrt_product(c2, c1) == pytest.approx(expected, rel=1e-9)  # symmetric in its arguments


def test_psd_sqrt_squares_back():
    c = _random_cov(4, 3)
    root = psd_sqrt(c)
    assert torch.allclose(root @ root, c, atol=1e-10)


def test_scaled_covariance_closed_form():
    # FD(N(0, C), N(0, k^2 C)) = Tr(C) (1 - k)^2
    c, k = _random_cov(5, 4), 3.0
    fd = frechet_distance(torch.zeros(5), c, torch.zeros(5), k ** 2 * c)
    assert fd == pytest.approx(float(torch.trace(c)) * (1 - k) ** 2, rel=1e-9)


def test_singular_covariances_do_not_break_it():
    # Features that are always zero (dead ReLUs) make the covariance singular.
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g) + 1.0
    a[:, 3] = 0.0
    b[:, 3] = 0.0
    fd = frechet_distance_of_features(a, b)
    assert math.isfinite(fd)
    # A dimension that is zero in both sets adds nothing.
    assert fd == pytest.approx(frechet_distance_of_features(a[:, :3], b[:, :3]), rel=1e-9)


def test_from_samples_matches_the_closed_form_of_the_sample_statistics():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    b = 2.0 * torch.randn(2000, 3, generator=g, dtype=torch.float64) + 0.5
    mu_a, cov_a = gaussian_stats(a)
    assert torch.allclose(cov_a, torch.cov(a.T))
    assert frechet_distance_of_features(a, b) == pytest.approx(
        frechet_distance(mu_a, cov_a, *gaussian_stats(b)))
    # The population value is 3 * 0.5^2 + 3 * (2 - 1)^2 = 3.75; 2000 samples land near it.
    assert frechet_distance_of_features(a, b) == pytest.approx(3.75, rel=0.1)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))


# --------------------------------------------------------------------------- speed variants

def test_variant_names_parse_and_round_trip():
    from benchmarks.speed import Variant, parse_variant

    v = parse_variant("engine+channels_last+bf16+threads=1")
    assert v == Variant("engine", channels_last=True, bf16=True, threads=1)
    assert parse_variant(v.name) == v
    assert parse_variant("idiomatic") == Variant("idiomatic")
    contiguous = parse_variant("engine+contiguous")
    assert contiguous == Variant("engine", channels_last=False) and contiguous.name == "engine+contiguous"
    for bad in ("fast", "engine+turbo", "engine+threads=0"):
        with pytest.raises(ValueError, match="variant"):
            parse_variant(bad)


# --------------------------------------------------------------------------- report (book pages)

def _scored(epochs, tflop, mse, fd, iwae=None):
    return {"epochs": epochs, "train_tflop": tflop, "reconstruction_mse": {"mean": mse},
            "frechet_distance": {"value": fd}, "iwae_nll_nats": None if iwae is None else {"value": iwae, "k": 1000},
            "test_loss_per_epoch": [1.0] * epochs, "own_metric": {"test_loss": 1.0, "name": "x"},
            "train_seconds": 60.0 * epochs}


def _quality():
    return {"recipes": {"big": _scored(50, 100.0, 0.020, 9.0),
                        "cheap": _scored(10, 5.0, 0.030, 20.0, iwae=300.0),
                        "tiny": _scored(20, 1.0, 0.050, 40.0),
                        "course": _scored(30, 72.0, 0.015, 8.0, iwae=250.0)},
            "milestones": {"course": {"1": _scored(1, 2.4, 0.040, 30.0, iwae=320.0),
                                      "3": _scored(3, 7.2, 0.025, 15.0, iwae=280.0)}}}


def test_budget_matched_takes_the_longest_course_point_within_the_sources_budget():
    from benchmarks.report import budget_matched, budget_markdown
    rows = {r["source"]: r for r in budget_matched(_quality())}
    assert set(rows) == {"big", "cheap", "tiny"}
    # 100 TFLOP allows the full 30-epoch course run (72 TFLOP).
    assert rows["big"]["course_epochs"] == 30 and rows["big"]["basis"] == "training FLOPs"
    assert rows["big"]["course_wins"]
    # 5 TFLOP allows only the 1-epoch milestone (3 epochs cost 7.2): it loses on IWAE (320 > 300).
    assert rows["cheap"]["course_epochs"] == 1
    assert rows["cheap"]["yardsticks"]["IWAE NLL (nats)"] == {"course": 320.0, "source": 300.0,
                                                               "course_better": False}
    assert not rows["cheap"]["course_wins"]
    # Below one course epoch in FLOPs: the cheapest course point, matched on images seen, and
    # the table says so; no IWAE for the source.
    assert rows["tiny"]["basis"] == "images seen (more FLOPs)" and rows["tiny"]["course_epochs"] == 1
    assert "IWAE NLL (nats)" not in rows["tiny"]["yardsticks"]
    table = budget_markdown(_quality())
    assert "| `cheap` (10, 5.0) | 1, 2.4 | training FLOPs | 0.0400 / 0.0300 | 30.00 / 20.00 | 320.00 / 300.00 | no |" in table


def test_speed_markdown_reports_every_variant_against_its_baseline():
    from benchmarks.report import speed_markdown, speed_rows
    variant = {"variant": "engine", "threads": 1, "s_per_epoch": 100.0, "images_per_s": 600.0,
               "gflop_per_s": 24.3, "peak_memory_mib": 80.0, "speedup": 1.5, "speedup_range": [1.4, 1.6]}
    baseline = {**variant, "variant": "idiomatic", "s_per_epoch": 150.0, "speedup": 1.0, "speedup_range": [1.0, 1.0]}
    results = {"runs": {"m": {"recipe": "matlab-2022", "batch_size": 128, "baseline": "idiomatic",
                              "variants": [baseline, variant], "hardware": {"load_average_1min": 1.0}}}}
    assert [r["variant"] for r in speed_rows(results)] == ["idiomatic", "engine"]
    no_peak = {"runs": {"m": {**results["runs"]["m"], "variants": [{**variant, "peak_memory_mib": None}]}}}
    assert "| matlab-2022, 128 | engine, 1 | 100.0 | 600 | 24.3 | – |" in speed_markdown(no_peak)
    table = speed_markdown(results)
    assert "| matlab-2022, 128 | idiomatic, 1 | 150.0 | 600 | 24.3 | 80 | baseline |" in table
    assert "| matlab-2022, 128 | engine, 1 | 100.0 | 600 | 24.3 | 80 | 1.50x (1.40-1.60) |" in table


def test_short_shapes_keeps_the_first_non_empty_input_shapes():
    from benchmarks.report import short_shapes
    assert short_shapes("[[128, 32, 28, 28], [64, 32, 3, 3], [], [], []]") == "[128, 32, 28, 28], [64, 32, 3, 3]"
    assert short_shapes("[[1], [2], [3], [4]]", keep=2) == "[1], [2]"


def test_quality_table_lists_the_course_milestones_under_the_full_runs():
    from benchmarks.quality import markdown_report
    results = {"settings": {"dataset": "fashion-mnist"}, "feature_net": {"test_accuracy": 0.9,
                                                                        "frechet_distance_train_vs_test": 0.2},
               **_quality()}
    table = markdown_report(results).splitlines()
    names = [line.split(" | ")[0].removeprefix("| ") for line in table if line.startswith("| ")][1:]
    assert names == ["big", "cheap", "tiny", "course", "course, after 1 epoch of 30", "course, after 3 epochs of 30"]


def test_compare_report_puts_each_score_next_to_the_published_one():
    from benchmarks.quality import compare_report
    published = _quality()
    mine = {"recipes": {"cheap": _scored(10, 5.0, 0.0303, 20.0, iwae=297.0),
                        "big": _scored(49, 100.0, 0.020, 9.0),
                        "new": _scored(1, 1.0, 0.1, 1.0)}}
    table = compare_report(published, mine)
    assert "| cheap | reconstruction MSE | 0.03 | 0.0303 | +1.00 % |" in table
    assert "| cheap | IWAE NLL (nats) | 300 | 297 | -1.00 % |" in table
    assert "| cheap | Fréchet distance | 20 | 20 | +0.00 % |" in table
    assert "| big | epochs: not comparable | 50 | 49 | |" in table
    assert "| new | (not in the published file) | | | |" in table


def test_quality_refuses_to_overwrite_results_of_other_settings(tmp_path, capsys):
    from benchmarks.quality import main
    path = tmp_path / "quality.json"
    path.write_text(json.dumps({"benchmark": "quality", "settings": {"dataset": "fashion-mnist", "iwae_images": 500},
                                "recipes": {"pytorch-mlp": {"epochs": 20}}}))
    before = path.read_text()
    with pytest.raises(SystemExit) as stop:
        main(["--recipes", "pytorch-mlp", "--subset", "64", "--epochs", "1", "--device", "cpu",
              "--json", str(path), "--work", str(tmp_path / "work"), "--no-progress"])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert str(path) in message and "iwae_images 500 there, 200 here" in message and "--json NEW.json" in message
    assert path.read_text() == before
    # Scored milestones alone (an interrupted course run) are kept just the same.
    path.write_text(json.dumps({"benchmark": "quality", "settings": {"dataset": "fashion-mnist", "iwae_images": 500},
                                "recipes": {}, "milestones": {"course": {"1": {"epochs": 1}}, "tf-cvae": {}}}))
    before = path.read_text()
    with pytest.raises(SystemExit):
        main(["--recipes", "course", "--subset", "64", "--epochs", "1", "--device", "cpu",
              "--json", str(path), "--work", str(tmp_path / "work"), "--no-progress"])
    assert path.read_text() == before


def test_quality_shipped_scores_only_the_shipped_full_length_runs(tmp_path, capsys):
    from benchmarks.quality import main, markdown_report
    for shortened in (["--subset", "64"], ["--epochs", "1"], ["--seed", "1"]):
        with pytest.raises(SystemExit) as stop:
            main(["--shipped", *shortened, "--json", str(tmp_path / "q.json"), "--no-progress"])
        assert stop.value.code == 2
        assert "leave out --epochs, --subset and --seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--shipped", "--recipes", "course-fast", "--dataset", "mnist", "--json", str(tmp_path / "q.json")])
    assert "no shipped weights of course-fast on mnist" in capsys.readouterr().err
    assert not (tmp_path / "q.json").exists()
    # the table says where the shipped rows were trained and where they were scored
    results = {"settings": {"dataset": "mnist"}, "feature_net": {"test_accuracy": 0.99,
                                                                "frechet_distance_train_vs_test": 0.1},
               **_quality()}
    for r in results["recipes"].values():
        r["trained"] = {"hardware": "CPU A, 2 cores, 1 torch threads"}
        r["hardware"] = {"cpu": "CPU B"}
    first = markdown_report(results).splitlines()[0]
    assert "shipped weights, trained on CPU A, 2 cores, 1 torch threads and scored on CPU B" in first


def test_quality_compare_names_a_file_that_is_not_a_quality_result(tmp_path, capsys):
    from benchmarks.quality import main
    speed = tmp_path / "speed.json"
    speed.write_text(json.dumps({"benchmark": "speed", "runs": {}}))
    with pytest.raises(SystemExit) as stop:
        main(["--compare", str(speed)])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert str(speed) in message and "not a results file of benchmarks.quality" in message


def test_recipe_time_writes_one_entry_per_variant(tmp_path, monkeypatch, fashion_dir):
    from benchmarks.recipe_time import main
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    out = tmp_path / "recipe-time.json"
    assert main(["--recipe", "pytorch-mlp", "--epochs", "1", "--subset", "256", "--device", "cpu",
                 "--variants", "engine", "engine+bf16", "--json", str(out)]) == 0
    import json
    runs = json.loads(out.read_text())["runs"]
    assert set(runs) == {"pytorch-mlp: engine", "pytorch-mlp: engine+bf16"}
    for run in runs.values():
        assert run["epochs"] == 1 and run["wall_s"] > 0 and run["hardware"]["device"] == "cpu"
    with pytest.raises(SystemExit):  # argparse's error: exit status 2 with the message
        main(["--recipe", "pytorch-mlp", "--variants", "idiomatic", "--json", str(out)])
