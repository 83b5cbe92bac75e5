"""The source architectures: shapes layer by layer, parameter counts, initialisation, registry."""
import json
import math

import pytest
import torch

from vae_course.conditional import ConditionalMLPVAE
from vae_course.models import (ARCHITECTURES, MatlabR2022bVAE, MLPVAE, build_model, count_parameters,
                               layer_shapes)
from vae_course.vae import VAEOutput

GLOROT_ARCHS = ["matlab-2022", "matlab-2019", "tf-cvae"]
DEFAULT_LATENT = {"matlab-2022": 16, "matlab-2019": 20, "tf-cvae": 2, "mlp": 2, "cvae-mlp": 16}


def forward(model, x, y=None):
    return model(x, y) if model.conditional else model(x)


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 1, 28, 28, generator=g), torch.tensor([0, 4, 9])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_has_the_shared_interface(arch, batch):
    torch.manual_seed(0)
    x, y = batch
    model = build_model(arch)
    latent = DEFAULT_LATENT[arch]
    assert model.latent_dim == latent
    out = forward(model, x, y)
    assert isinstance(out, VAEOutput)
    assert out.logits.shape == (3, 1, 28, 28)
    assert out.z.shape == out.mu.shape == out.logvar.shape == (3, latent)
    if model.conditional:
        images = model.decode(out.z, y)
        mu, _ = model.encode(x, y)
        samples = model.sample(5, y=2)
        recon = model.reconstruct(x, y), model.reconstruct(x, y)
    else:
        images = model.decode(out.z)
        mu, _ = model.encode(x)
        samples = model.sample(5)
        recon = model.reconstruct(x), model.reconstruct(x)
    assert torch.allclose(images, torch.sigmoid(out.logits))
    assert torch.equal(mu, out.mu)
    assert samples.shape == (5, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    assert torch.equal(*recon)  # reconstruct decodes mu: deterministic


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_build_model_round_trips_through_config(arch):
    model = build_model(arch, latent_dim=3)
    config = json.loads(json.dumps(model.config))  # configs survive JSON (checkpoints, recipes)
    rebuilt = build_model(**config)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_matlab_r2022b_shapes_match_the_source_layer_by_layer():
    # MATLAB writes H x W x C; PyTorch's (C, H, W).
    hwc = [shape for _, shape in layer_shapes(MatlabR2022bVAE())]
    source = [(28, 28, 1),                                   # imageInputLayer
              (14, 14, 32), (14, 14, 32),                    # conv, relu
              (7, 7, 64), (7, 7, 64),                        # conv, relu
              (3136,), (32,),                                # (flatten), fullyConnected 2*16
              (16,),                                         # samplingLayer: Z
              (7, 7, 64),                                    # projectAndReshape
              (14, 14, 64), (14, 14, 64),                    # tconv, relu
              (28, 28, 32), (28, 28, 32),                    # tconv, relu
              (28, 28, 1), (28, 28, 1)]                      # tconv, sigmoid
    as_hwc = [s if len(s) == 1 else (s[1], s[2], s[0]) for s in hwc]
    assert as_hwc == source


def test_layer_shapes_names_each_layer_and_leaves_the_model_as_it_was():
    model = MatlabR2022bVAE()
    model.train()
    rows = layer_shapes(model)
    names = [name for name, _ in rows]
    assert names[0] == "input" and names[-1].startswith("sigmoid")
    assert any(n.startswith("sampling SamplingLayer") for n in names)
    assert "decoder.0 ProjectAndReshape(in_features=16, shape=(64, 7, 7))" in names
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("arch, expected", [
    ("matlab-2019", [(1, 28, 28), (32, 14, 14), (64, 7, 7), (3136,), (40,), (20,), (20, 1, 1), (64, 7, 7),
                     (64, 14, 14), (32, 28, 28), (1, 28, 28)]),
    ("tf-cvae", [(1, 28, 28), (32, 13, 13), (64, 6, 6), (2304,), (4,), (2,), (1568,), (32, 7, 7),
                 (64, 14, 14), (32, 28, 28), (1, 28, 28)]),
])
def test_other_source_shapes(arch, expected):
    shapes = [s for _, s in layer_shapes(build_model(arch))]
    deduplicated = [s for i, s in enumerate(shapes) if i == 0 or s != shapes[i - 1]]  # drop ReLUs
    assert deduplicated == expected


def test_parameter_counts_by_hand():
    encoder = conv(1, 32, 3) + conv(32, 64, 3)
    assert count_parameters(build_model("matlab-2022")) == (
        encoder + dense(7 * 7 * 64, 32)
        + dense(16, 7 * 7 * 64) + conv(64, 64, 3) + conv(64, 32, 3) + conv(32, 1, 3)) == 228_193
    assert count_parameters(build_model("matlab-2019")) == (
        encoder + dense(7 * 7 * 64, 40)
        + conv(20, 64, 7) + conv(64, 64, 3) + conv(64, 32, 3) + conv(32, 1, 3)) == 262_761
    assert count_parameters(build_model("tf-cvae")) == (
        encoder + dense(6 * 6 * 64, 4)
        + dense(2, 7 * 7 * 32) + conv(32, 64, 3) + conv(64, 32, 3) + conv(32, 1, 3)) == 69_989
    # pytorch/examples: fc1, fc21 + fc22 (= one 400 -> 40 layer), fc3, fc4.
    assert count_parameters(build_model("mlp", hidden=(400,), latent_dim=20)) == (
        dense(784, 400) + 2 * dense(400, 20) + dense(20, 400) + dense(400, 784)) == 652_824
    assert count_parameters(build_model("mlp")) == (
        dense(784, 128) + dense(128, 4) + dense(2, 128) + dense(128, 784)) == 202_516
    assert count_parameters(build_model("cvae-mlp")) == (
        dense(794, 512) + dense(512, 32) + dense(26, 512) + dense(512, 784)) == 839_472


@pytest.mark.parametrize("arch", GLOROT_ARCHS)
def test_glorot_uniform_weights_and_zero_biases(arch):
    torch.manual_seed(0)
    model = build_model(arch)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d,
                                                           torch.nn.ConvTranspose2d))]
    assert len(layers) >= 6
    for layer in layers:
        w = layer.weight
        receptive = w[0, 0].numel()
        bound = math.sqrt(6 / ((w.shape[0] + w.shape[1]) * receptive))
        assert torch.count_nonzero(layer.bias) == 0
        assert w.abs().max() <= bound
        if w.numel() >= 10_000:  # uniform(-a, a) has variance a^2 / 3
            assert w.var().item() == pytest.approx(bound ** 2 / 3, rel=0.05)


def test_mlp_keeps_torch_default_initialisation():
    torch.manual_seed(0)
    first = build_model("mlp").encoder[1]
    assert torch.count_nonzero(first.bias) > 0
    assert first.weight.abs().max() <= 1 / math.sqrt(784)  # kaiming_uniform(a=sqrt(5)) bound


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_gradients_reach_the_encoder_through_the_sampling_layer(arch, batch):
    torch.manual_seed(0)
    x, y = batch
    model = build_model(arch)
    out = forward(model, x, y)
    out.mu.retain_grad()
    out.logvar.retain_grad()
    torch.nn.functional.binary_cross_entropy_with_logits(out.logits, x).backward()
    assert out.mu.grad.abs().sum() > 0 and out.logvar.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_unconditional_forward_ignores_labels(batch):
    x, y = batch
    model = build_model("mlp")
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = model(x, y)
    assert not model.conditional and torch.equal(a.logits, b.logits)


def test_sample_is_reproducible_with_a_generator():
    model = build_model("matlab-2022")
    a = model.sample(4, generator=torch.Generator().manual_seed(3))
    b = model.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not a.requires_grad


def test_invalid_arch_lists_the_options():
    with pytest.raises(ValueError, match="cvae-mlp, matlab-2019, matlab-2022, mlp, tf-cvae"):
        build_model("resnet")


def test_invalid_arguments_are_named():
    with pytest.raises(TypeError, match="does not take hiden.*accepts hidden, latent_dim"):
        build_model("mlp", hiden=(128,))
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        build_model("matlab-2022", latent_dim=0)
    with pytest.raises(ValueError, match="at least one layer"):
        MLPVAE(hidden=())


def test_mlp_hidden_layers_mirror_in_the_decoder():
    model = build_model("mlp", hidden=(256, 64), latent_dim=5)
    widths = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 64, 10]
    widths = [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert widths == [64, 256, 784]


def test_conditional_vae_uses_its_labels(batch):
    torch.manual_seed(0)
    x, y = batch
    model = ConditionalMLPVAE()
    assert model.conditional and model.config == {
        "arch": "cvae-mlp", "hidden": [512], "latent_dim": 16, "num_classes": 10}
    z = torch.randn(3, 16)
    assert not torch.allclose(model.decode(z, torch.tensor([1, 1, 1])),
                              model.decode(z, torch.tensor([7, 7, 7])))
    # Same z, same label -> same image, whichever way the label is given.
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(model.sample(3, y=7, generator=g()),
                       model.sample(3, y=torch.tensor([7, 7, 7]), generator=g()))
    assert not torch.equal(model.sample(3, y=1, generator=g()), model.sample(3, y=7, generator=g()))
    assert torch.equal(model.sample(12, generator=g())[10], model.sample(12, y=torch.arange(12) % 10,
                                                                      generator=g())[10])
    assert layer_shapes(model)[1][1] == (512,)


def test_conditional_vae_explains_missing_or_bad_labels(batch):
    x, _ = batch
    model = ConditionalMLPVAE()
    with pytest.raises(ValueError, match="pass the labels"):
        model(x)
    with pytest.raises(ValueError, match="0..9"):
        model(x, torch.tensor([0, 1, 10]))
    with pytest.raises(ValueError, match="integers of shape"):
        model(x, torch.zeros(3, 10))
