"""The residual unit's variants, each a table beside the code that builds it:
block types (`BLOCKS`), where the norm and ReLU sit (`UNITS`, He et al. 2016,
Fig. 4), the norm's layer (`NORMS`) and the shortcut forms (`SHORTCUT_FORMS`,
He et al. 2016, Fig. 2 and Table 1). models._Builder puts them together, and
marks each layer response of the paper's Fig. 7 with a `Response` layer."""
from __future__ import annotations

from typing import Callable, NamedTuple

import keras
from keras import layers, ops

BOTTLENECK_EXPANSION = 4
SHORTCUT_PREFIX = "shortcut"  # names of shortcut layers (projections, gates): not counted in the depth


# `model.unit` (He et al. 2016, Fig. 4 a-e): where BN and ReLU sit in a residual
# unit, as the steps before its first convolution, between two of its
# convolutions, after its last, and after the addition. A pre-activation unit
# (its first convolution preceded by steps) ends the net with a BN-ReLU before
# pooling, as the paper's; the first unit after the stem skips its steps before
# the first convolution, whose input the stem has just activated (the paper's appendix).
class Unit(NamedTuple):
    before: tuple[str, ...]
    between: tuple[str, ...]
    after_last: tuple[str, ...]
    after_addition: tuple[str, ...]


UNITS = {
    "original": Unit((), ("bn", "relu"), ("bn",), ("relu",)),  # (a)
    "bn_after_addition": Unit((), ("bn", "relu"), (), ("bn", "relu")),  # (b)
    "relu_before_addition": Unit((), ("bn", "relu"), ("bn", "relu"), ()),  # (c)
    "relu_only_preactivation": Unit(("relu",), ("bn", "relu"), ("bn",), ()),  # (d)
    "full_preactivation": Unit(("bn", "relu"), ("bn", "relu"), (), ()),  # (e)
}


class Norm(NamedTuple):
    make: Callable | None  # (model params, layer name) -> the layer; None: no layer, and convolutions get a bias
    suffix: str = ""  # its layers' names: NAME_SUFFIX


# `model.norm`: what a "bn" step of a unit is. The batch norm's momentum and epsilon
# are the paper's Torch reference's; group norm (Wu & He 2018) normalizes each
# image's channels in `model.norm_groups` groups, independent of the batch size.
NORMS = {
    "batch": Norm(lambda model, name: layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name), "bn"),
    "group": Norm(lambda model, name: layers.GroupNormalization(model.norm_groups, epsilon=1e-5, name=name), "gn"),
    "none": Norm(None),
}
# `model.block`: the residual function's convolutions as (kernel, width multiple of
# the stage width) in order; the last one's width is the block's output width.
BLOCKS = {
    "basic": ((3, 1), (3, 1)),  # two 3x3 (ResNet-18/34, the CIFAR ResNets)
    "bottleneck": ((1, 1), (3, 1), (1, BOTTLENECK_EXPANSION)),  # 1x1 reduce, 3x3 (strided), 1x1 expand
}
# Weighted layers per block, for the depth rules (`resnet_cifar`: 6n+2 basic, 9n+2 bottleneck).
BLOCK_LAYERS = {name: len(convs) for name, convs in BLOCKS.items()}
BLOCK_CHOICES = ("auto", *BLOCKS)  # `auto`: block_of


@keras.saving.register_keras_serializable(package="ablation")
class Response(layers.Identity):
    """Marks its input as a "layer response" of the paper's Fig. 7 (evaluate measures
    its std): the output of a 3x3 convolution of the main path, after the norm that
    follows it where one does. An identity: it changes no number of the net."""


@keras.saving.register_keras_serializable(package="ablation")
class GatedSum(layers.Layer):
    """He et al. 2016, Fig. 2c/2d: g = sigmoid(gate logits); exclusive gating
    g*F + (1-g)*shortcut, shortcut-only gating F + (1-g)*shortcut. Inputs
    [F, shortcut, gate logits]."""

    def __init__(self, exclusive: bool, **kwargs):
        super().__init__(**kwargs)
        self.exclusive = exclusive

    def call(self, inputs):
        residual, shortcut, logits = inputs
        gate = ops.sigmoid(logits)
        return (gate * residual if self.exclusive else residual) + (1 - gate) * shortcut

    def get_config(self):
        return {**super().get_config(), "exclusive": self.exclusive}


def _identity_sum(b, residual, shortcut, x, filters, stride, name):
    return layers.Add(name=f"{name}_add")([residual, shortcut])


def _scaled_sum(b, residual, shortcut, x, filters, stride, name):
    shortcut = layers.Rescaling(b.model.shortcut_scale, name=f"{name}_{SHORTCUT_PREFIX}_scale")(shortcut)
    if b.model.scale_residual:
        residual = layers.Rescaling(1 - b.model.shortcut_scale, name=f"{name}_residual_scale")(residual)
    return layers.Add(name=f"{name}_add")([residual, shortcut])


def _gated_sum(exclusive: bool):
    def merge(b, residual, shortcut, x, filters, stride, name):
        logits = layers.Conv2D(filters, 1, strides=stride, kernel_initializer="he_normal",
                               bias_initializer=keras.initializers.Constant(b.model.gate_bias),
                               kernel_regularizer=b.regularizer, name=f"{name}_{SHORTCUT_PREFIX}_gate_conv")(x)
        return GatedSum(exclusive, name=f"{name}_add")([residual, shortcut, logits])
    return merge


def _dropout_sum(b, residual, shortcut, x, filters, stride, name):
    shortcut = layers.Dropout(b.model.shortcut_dropout, name=f"{name}_{SHORTCUT_PREFIX}_dropout")(shortcut)
    return layers.Add(name=f"{name}_add")([residual, shortcut])


class ShortcutForm(NamedTuple):
    merge: Callable  # (builder, F, shortcut, block input, width, stride, name) -> the unit's sum
    projects_always: bool = False  # every shortcut a 1x1 projection, whatever model.shortcut says


# `model.shortcut_form` (He et al. 2016, Fig. 2 a-f; Table 1). Their parameters are
# the knobs model.shortcut_scale, model.scale_residual, model.gate_bias and
# model.shortcut_dropout.
SHORTCUT_FORMS = {
    "identity": ShortcutForm(_identity_sum),  # (a)
    "constant_scaling": ShortcutForm(_scaled_sum),  # (b): lambda * shortcut (+ (1 - lambda) * F)
    "exclusive_gating": ShortcutForm(_gated_sum(exclusive=True)),  # (c)
    "shortcut_only_gating": ShortcutForm(_gated_sum(exclusive=False)),  # (d)
    # (e): the paper likens it to option C of He et al. 2015, and it is built as that.
    "conv1x1": ShortcutForm(_identity_sum, projects_always=True),
    "dropout": ShortcutForm(_dropout_sum),  # (f)
}
