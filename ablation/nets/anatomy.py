"""What a built network is, as the describe stage, the arm report and evaluate
read it: its weighted layers (the depth in its name), parameters, forward FLOPs,
shortcut additions and the layer responses of the paper's Fig. 7."""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from ablation.nets.units import SHORTCUT_PREFIX, GatedSum, Response

WEIGHTED = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D, layers.Dense)


def flat_layers(net: keras.Model) -> list[layers.Layer]:
    """Every layer, those of nested models included (a user's builder may nest them)."""
    return [inner for layer in net.layers
            for inner in (flat_layers(layer) if isinstance(layer, keras.Model) else [layer])]


def weighted_layers(net: keras.Model) -> list[layers.Layer]:
    """Convolutions and dense layers of the main path: the depth in the name."""
    return [layer for layer in flat_layers(net) if isinstance(layer, WEIGHTED) and SHORTCUT_PREFIX not in layer.name]


def response_layers(net: keras.Model) -> list[layers.Layer]:
    """For each 3x3 convolution of the main path, in depth order, the layer whose
    output is its "layer response" in the paper's Fig. 7, as _Builder.conv marked
    it: after the norm right after the convolution where one is (the original
    unit's, before the addition and ReLU), else after the convolution itself (the
    last one of a pre-activation unit, whose output goes to the addition; any
    with model.norm=none)."""
    return [layer for layer in flat_layers(net) if isinstance(layer, Response)]


def residual_additions(net: keras.Model) -> int:
    """Shortcuts merged into the main path (additions, or gated sums)."""
    return sum(isinstance(layer, (layers.Add, GatedSum)) for layer in flat_layers(net))


def trainable_parameters(net: keras.Model) -> int:
    return int(sum(ops.size(w) for w in net.trainable_weights))


def _macs(layer: layers.Layer) -> int:
    """Multiply-adds per image of one weighted layer (0 for any other)."""
    positions = math.prod(layer.output.shape[1:-1]) if isinstance(layer, WEIGHTED) else 0
    if isinstance(layer, layers.SeparableConv2D):  # k x k per channel, then 1 x 1 across channels
        return positions * (math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape))
    # A depthwise kernel is (k, k, channels, multiplier); a Dense on feature maps acts at every position.
    return positions * math.prod(layer.kernel.shape) if positions else 0


def forward_flops(net: keras.Model) -> int:
    """Forward FLOPs per image, counting a multiply-add as 2 FLOPs (the paper's
    Table 1 counts multiply-adds, i.e. half of this). Convolutions and dense
    layers only: norms, activations, pooling and additions are a rounding error."""
    return 2 * int(sum(_macs(layer) for layer in flat_layers(net)))


def describe(net: keras.Model) -> dict:
    return {
        "model": net.name,
        "trainable_params": trainable_parameters(net),
        "flops": forward_flops(net),
        "weighted_layers": len(weighted_layers(net)),
        "residual_additions": residual_additions(net),
    }
