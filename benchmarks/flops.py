"""Analytic FLOP counts for convolution, transposed-convolution and linear layers.

Independent of vae_course: it only looks at ``torch.nn`` layers.  One multiply-accumulate
(MAC) counts as 2 FLOPs.  Per layer, for one image::

    Conv2d           MACs = output elements * (in_channels / groups) * kh * kw
    ConvTranspose2d  MACs = input elements  * (out_channels / groups) * kh * kw
                     (every input pixel scatters one kernel into the output)
    Linear           MACs = output elements * in_features

Biases, activations, the sampling layer and the loss are left out: they are elementwise,
a few percent of the total.  Training costs about 3x the forward pass (the backward pass
computes a gradient for the layer's input and one for its weights, each as large as the
forward product), the usual approximation.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

COUNTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
TRAINING_FACTOR = 3  # forward + backward (input gradient and weight gradient)


def layer_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a counted layer, summed over the batch."""
    if isinstance(module, nn.ConvTranspose2d):
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return inputs[0].numel() * per_input
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    raise TypeError(f"layer_macs: cannot count {type(module).__name__}; counted layers are "
                    f"{', '.join(t.__name__ for t in COUNTED)}")


def forward_flops(model: nn.Module, *example: Any) -> list[tuple[str, int]]:
    """``(layer name, forward FLOPs per image)`` for every counted layer, in call order.

    ``example``: the model's inputs for a batch (e.g. one image ``torch.zeros(1, 1, 28, 28)``);
    the counts are divided by its batch size.  A layer with parameters that is not counted
    (BatchNorm, an RNN...) raises, so a total never silently misses a layer.
    """
    batch = len(example[0])
    uncounted = [name for name, m in model.named_modules()
                 if not list(m.children()) and list(m.parameters(recurse=False))
                 and not isinstance(m, COUNTED)]
    if uncounted:
        raise TypeError(f"forward_flops: layers with parameters that are not counted: "
                        f"{', '.join(uncounted)}; extend benchmarks/flops.py")
    names = {m: name for name, m in model.named_modules()}
    rows: list[tuple[str, int]] = []

    def hook(module, inputs, output):
        rows.append((names[module], 2 * layer_macs(module, inputs, output) // batch))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, COUNTED)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*example)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def training_flops_per_image(model: nn.Module, *example: Any) -> int:
    """Approximate FLOPs to train on one image: ``TRAINING_FACTOR`` x the forward FLOPs."""
    return TRAINING_FACTOR * sum(flops for _, flops in forward_flops(model, *example))
