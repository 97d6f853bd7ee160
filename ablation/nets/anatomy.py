"""What a built network is, as the describe stage, the arm report and evaluate
read it: its weighted layers (the depth in its name), parameters, forward FLOPs,
shortcut additions and the layer responses of the paper's Fig. 7."""
from __future__ import annotations

import keras
from keras import layers, ops

from ablation.nets.units import SHORTCUT_PREFIX, GatedSum, Response


def weighted_layers(net: keras.Model) -> list[layers.Layer]:
    """Convolutions and dense layers of the main path: the depth in the name."""
    return [layer for layer in net.layers if isinstance(layer, (layers.Conv2D, layers.Dense))
            and SHORTCUT_PREFIX not in layer.name]


def response_layers(net: keras.Model) -> list[layers.Layer]:
    """For each 3x3 convolution of the main path, in depth order, the layer whose
    output is its "layer response" in the paper's Fig. 7, as _Builder.conv marked
    it: after the norm right after the convolution where one is (the original
    unit's, before the addition and ReLU), else after the convolution itself (the
    last one of a pre-activation unit, whose output goes to the addition; any
    with model.norm=none)."""
    return [layer for layer in net.layers if isinstance(layer, Response)]


def residual_additions(net: keras.Model) -> int:
    """Shortcuts merged into the main path (additions, or gated sums)."""
    return sum(isinstance(layer, (layers.Add, GatedSum)) for layer in net.layers)


def trainable_parameters(net: keras.Model) -> int:
    return int(sum(ops.size(w) for w in net.trainable_weights))


def forward_flops(net: keras.Model) -> int:
    """Forward FLOPs per image, counting a multiply-add as 2 FLOPs (the paper's
    Table 1 counts multiply-adds, i.e. half of this). Convolutions and dense
    layers only: BN, ReLU, pooling and additions are a rounding error."""
    macs = 0
    for layer in net.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kh, kw, in_channels, _ = layer.kernel.shape
            macs += height * width * out_channels * kh * kw * in_channels
        elif isinstance(layer, layers.Dense):
            macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 2 * int(macs)


def describe(net: keras.Model) -> dict:
    return {
        "model": net.name,
        "trainable_params": trainable_parameters(net),
        "flops": forward_flops(net),
        "weighted_layers": len(weighted_layers(net)),
        "residual_additions": residual_additions(net),
    }
