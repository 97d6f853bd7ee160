"""The model zoo: ResNet (He et al. 2015, Table 1), the CIFAR ResNets (section
4.2) and VGG, each with its plain twin, built from blocks and driven by the
`model` section of params.yaml.

Layout follows torchvision's resnet.py: a function per block type
(`basic_block`, `bottleneck_block`), a stage builder (`make_stage`), and one
entry point, `build_model`. The plain twin (`residual: false`) is the same
layers in the same order with no shortcut additions and no projections.
"""
from __future__ import annotations

import sys
from typing import Callable, NamedTuple

import keras
from keras import layers, ops


# Keras maps a functional graph recursively, a few frames per layer, when it builds
# or loads a model: the paper's 1202-layer CIFAR ResNet needs ~15k frames, past
# Python's default limit of 1000. Both build_model and keras' load_model (the
# evaluate stage) run after this import.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 30_000))

# Table 1: (block type, blocks per stage) for each depth.
RESNET_STAGES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
RESNET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)  # section 4.2: 6n+2 layers, 2n per width
VGG_BLOCKS = {  # convolutions per block (Simonyan & Zisserman, Table 1)
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
VGG_WIDTHS = (64, 128, 256, 512, 512)
VGG_MIN_SIDE = 2 ** len(VGG_WIDTHS)  # a 2x2 max-pool after each block
BOTTLENECK_EXPANSION = 4
SMALL_STEM_BELOW = 96  # `stem: auto` uses the ImageNet stem from this side length up
# `model.shortcut` (paper, Table 3): whether a block's shortcut is a 1x1 projection,
# given whether the block changes width or resolution. A shortcut without a
# projection is the identity, zero-padded and subsampled where shapes change (option A).
SHORTCUT_PROJECTS = {
    "A": lambda reshapes: False,
    "B": lambda reshapes: reshapes,
    "C": lambda reshapes: True,
}
SHORTCUT_PREFIX = "shortcut"  # names of projection layers: not counted in the depth
# Initializers of the final classifier (`model.fc_init`). `linear_default` is
# torch.nn.Linear's default, U(+-1/sqrt(fan_in)), as in the paper's Torch
# reference (fb.resnet.torch); he_normal has sqrt(6)x its std, which gives a
# residual net (whose pooled features grow with depth) large image-independent
# logit offsets and a high initial loss (measured in params.yaml's comment).
FC_INITIALIZERS = {
    "linear_default": lambda: keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform"),
    "he_normal": lambda: keras.initializers.HeNormal(),
}


@keras.saving.register_keras_serializable(package="ablation")
class ZeroPadShortcut(layers.Layer):
    """Option A: identity with strided subsampling and zero-padded channels (no parameters)."""

    def __init__(self, filters: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.stride = filters, stride

    def call(self, x):
        x = x[:, :: self.stride, :: self.stride, :]
        extra = self.filters - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]) if extra else x

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


class _Builder:
    """Holds the per-model settings every layer needs (weight decay, shortcut type)."""

    def __init__(self, model):
        self.residual = model.residual
        self.projects = SHORTCUT_PROJECTS[model.shortcut]
        self.fc_init = model.fc_init
        # Keras' L2(l) adds l*sum(w^2), whose gradient is 2*l*w; the paper's SGD weight
        # decay wd adds wd*w, hence wd / 2.
        self.regularizer = keras.regularizers.L2(model.weight_decay / 2) if model.weight_decay else None

    def conv_bn(self, x, filters, kernel, stride, name, relu=True):
        """Convolution (no bias: BN follows) + batch normalization (+ ReLU)."""
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                          kernel_initializer="he_normal", kernel_regularizer=self.regularizer,
                          name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    def shortcut(self, x, filters, stride, name):
        """The shortcut branch of a block (paper, Table 3 options A/B/C)."""
        reshapes = stride != 1 or x.shape[-1] != filters
        if self.projects(reshapes):
            return self.conv_bn(x, filters, 1, stride, f"{name}_{SHORTCUT_PREFIX}", relu=False)
        if reshapes:
            return ZeroPadShortcut(filters, stride, name=f"{name}_{SHORTCUT_PREFIX}_pad")(x)
        return x

    def merge(self, x, shortcut_input, filters, stride, name):
        """Adds the shortcut to the residual branch; the plain twin skips it."""
        if self.residual:
            x = layers.Add(name=f"{name}_add")([x, self.shortcut(shortcut_input, filters, stride, name)])
        return layers.ReLU(name=f"{name}_out")(x)

    def basic_block(self, x, filters, stride, name):
        """Two 3x3 convolutions (ResNet-18/34 and the CIFAR ResNets)."""
        y = self.conv_bn(x, filters, 3, stride, f"{name}_1")
        y = self.conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
        return self.merge(y, x, filters, stride, name)

    def bottleneck_block(self, x, filters, stride, name):
        """1x1 reduce, 3x3 (strided, as torchvision), 1x1 expand x4 (ResNet-50/101/152)."""
        y = self.conv_bn(x, filters, 1, 1, f"{name}_1")
        y = self.conv_bn(y, filters, 3, stride, f"{name}_2")
        y = self.conv_bn(y, filters * BOTTLENECK_EXPANSION, 1, 1, f"{name}_3", relu=False)
        return self.merge(y, x, filters * BOTTLENECK_EXPANSION, stride, name)

    def make_stage(self, x, block, filters, blocks, stride, name):
        """A stage of `blocks` blocks; the first one changes width and resolution."""
        for index in range(blocks):
            x = block(x, filters, stride if index == 0 else 1, f"{name}_block{index + 1}")
        return x

    def classifier(self, x, num_classes):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return self.dense_softmax(x, num_classes)

    def dense_softmax(self, x, num_classes):
        x = layers.Dense(num_classes, kernel_initializer=FC_INITIALIZERS[self.fc_init](),
                         kernel_regularizer=self.regularizer, name="fc")(x)
        # float32 output keeps the loss stable under mixed precision.
        return layers.Activation("softmax", dtype="float32", name="predictions")(x)


def _imagenet_stem(b: _Builder, x):
    x = b.conv_bn(x, 64, 7, 2, "stem")
    return layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def _small_stem(b: _Builder, x):
    return b.conv_bn(x, 64, 3, 1, "stem")


# `model.stem` of the ImageNet ResNets: (builder, input) -> features.
STEMS = {
    "imagenet": _imagenet_stem,  # 7x7/2 + 3x3/2 max-pool (Table 1)
    "small": _small_stem,  # 3x3/1: small images keep their resolution
    "auto": lambda b, x: (_imagenet_stem if min(x.shape[1:3]) >= SMALL_STEM_BELOW else _small_stem)(b, x),
}


def _resnet(b: _Builder, inputs, model, num_classes):
    block_type, stage_blocks = RESNET_STAGES[model.depth]
    block = {"basic": b.basic_block, "bottleneck": b.bottleneck_block}[block_type]
    x = STEMS[model.stem](b, inputs)
    for index, (filters, blocks) in enumerate(zip(RESNET_WIDTHS, stage_blocks)):
        x = b.make_stage(x, block, filters, blocks, 1 if index == 0 else 2, f"stage{index + 1}")
    return b.classifier(x, num_classes)


def _resnet_cifar(b: _Builder, inputs, model, num_classes):
    blocks = (model.depth - 2) // 6
    x = b.conv_bn(inputs, CIFAR_WIDTHS[0], 3, 1, "stem")
    for index, filters in enumerate(CIFAR_WIDTHS):
        x = b.make_stage(x, b.basic_block, filters, blocks, 1 if index == 0 else 2, f"stage{index + 1}")
    return b.classifier(x, num_classes)


def _vgg(b: _Builder, inputs, model, num_classes):
    x = inputs
    for index, (filters, convs) in enumerate(zip(VGG_WIDTHS, VGG_BLOCKS[model.depth])):
        for conv in range(convs):
            x = b.conv_bn(x, filters, 3, 1, f"block{index + 1}_{conv + 1}")
        x = layers.MaxPooling2D(2, name=f"block{index + 1}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in range(2):
        x = layers.Dense(model.dense_units, activation="relu", kernel_initializer="he_normal",
                         kernel_regularizer=b.regularizer, name=f"dense{index + 1}")(x)
        x = layers.Dropout(model.dropout, name=f"dense{index + 1}_dropout")(x)
    return b.dense_softmax(x, num_classes)


class Architecture(NamedTuple):
    build: Callable  # (builder, input, model params, classes) -> class probabilities
    depths: str  # the allowed depths, for messages
    has_depth: Callable[[int], bool]
    has_shortcuts: bool = True  # False: there is no residual form, only the plain one
    min_side: int = 1  # smallest input side length


# `model.arch`: what `model.depth` may be for each, and how it is built.
ARCHITECTURES = {
    "resnet": Architecture(_resnet, ", ".join(map(str, RESNET_STAGES)), RESNET_STAGES.__contains__),
    "resnet_cifar": Architecture(_resnet_cifar, "6n+2: 8, 14, 20, 32, 44, 56, 110, 1202, ...",
                                 lambda depth: depth >= 8 and (depth - 2) % 6 == 0),
    "vgg": Architecture(_vgg, ", ".join(map(str, VGG_BLOCKS)), VGG_BLOCKS.__contains__,
                        has_shortcuts=False, min_side=VGG_MIN_SIDE),
}


def model_name(model) -> str:
    """`resnet34`, its plain twin `plain34`, `resnet_cifar56`, `vgg16`, ... for
    params.ModelParams (or anything with its arch, depth and residual)."""
    prefix = model.arch
    if ARCHITECTURES[model.arch].has_shortcuts and not model.residual:
        prefix = prefix.replace("resnet", "plain")
    return f"{prefix}{model.depth}"


def build_model(model, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Builds the uncompiled network that params.ModelParams `model` describes
    (validated when the params loaded)."""
    architecture = ARCHITECTURES[model.arch]
    if min(input_shape[:2]) < architecture.min_side:
        raise ValueError(f"{model.arch} needs images of at least {architecture.min_side}x{architecture.min_side}; "
                         f"got {input_shape}. Fix: raise data.image_size.")
    inputs = keras.Input(shape=input_shape, name="image")
    outputs = architecture.build(_Builder(model), inputs, model, num_classes)
    return keras.Model(inputs, outputs, name=model_name(model))


# --- describing a built model ------------------------------------------------

def weighted_layers(net: keras.Model) -> list[layers.Layer]:
    """Convolutions and dense layers of the main path: the depth in the name."""
    return [layer for layer in net.layers if isinstance(layer, (layers.Conv2D, layers.Dense))
            and SHORTCUT_PREFIX not in layer.name]


def response_layers(net: keras.Model) -> list[layers.Layer]:
    """The batch normalizations that follow each 3x3 convolution of the main path,
    in depth order: their outputs (after BN, before the addition and ReLU) are the
    "layer responses" of the paper's Fig. 7."""
    return [net.get_layer(layer.name.removesuffix("_conv") + "_bn") for layer in weighted_layers(net)
            if isinstance(layer, layers.Conv2D) and tuple(layer.kernel_size) == (3, 3)]


def residual_additions(net: keras.Model) -> int:
    return sum(isinstance(layer, layers.Add) for layer in net.layers)


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
