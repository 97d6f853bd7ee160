"""The model zoo: ResNet (He et al. 2015, Table 1), the CIFAR ResNets (section
4.2) and VGG, each with its plain twin, built from blocks and driven by the
`model` section of params.yaml.

Layout follows torchvision's resnet.py and timm's variants-as-tables: the unit's
variants in ablation/nets/units.py (`BLOCKS`, He et al. 2016's `UNITS` and
`SHORTCUT_FORMS`, `NORMS`), one unit builder (`_Builder.block`), a stage builder
(`make_stage`), and one entry point, `build_model`. The plain twin
(`residual: false`) is the same layers in the same order with no shortcut
additions and no projections.
"""
from __future__ import annotations

import sys
from typing import Callable, NamedTuple

import keras
from keras import layers, ops

from ablation.core.errors import ParamsError
from ablation.nets import builders
from ablation.nets.units import BLOCK_LAYERS, BLOCKS, NORMS, SHORTCUT_FORMS, SHORTCUT_PREFIX, UNITS, Response

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
# Bounds checked when params load, before anything is built (a typo'd depth or width
# would otherwise build for minutes or run out of memory).
MAX_LAYERS = 2000  # weighted layers: past the paper's deepest network (1202)
MAX_PARAMS = 10**9  # 4 GB of float32 weights, before gradients and optimizer state
SMALL_STEM_BELOW = 96  # `stem: auto` uses the ImageNet stem from this side length up
# `model.shortcut` (paper, Table 3): whether a block's shortcut is a 1x1 projection,
# given whether the block changes width or resolution. A shortcut without a
# projection is the identity, zero-padded and subsampled where shapes change (option A).
SHORTCUT_PROJECTS = {
    "A": lambda reshapes: False,
    "B": lambda reshapes: reshapes,
    "C": lambda reshapes: True,
}
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
    """Holds the per-model settings every layer needs (unit, norm, shortcuts, weight decay)."""

    def __init__(self, model):
        self.model = model
        self.residual = model.residual
        self.unit = UNITS[model.unit]
        self.norm = NORMS[model.norm]
        self.form = SHORTCUT_FORMS[model.shortcut_form]
        self.projects = SHORTCUT_PROJECTS[model.shortcut]
        self.fc_init = model.fc_init
        # Keras' L2(l) adds l*sum(w^2), whose gradient is 2*l*w; the paper's SGD weight
        # decay wd adds wd*w, hence wd / 2.
        self.regularizer = keras.regularizers.L2(model.weight_decay / 2) if model.weight_decay else None

    @property
    def preactivation(self) -> bool:
        return bool(self.unit.before)

    def steps(self, x, steps, name):
        """Norm ("bn": model.norm's layer, none without one) and ReLU ("relu") steps, in order."""
        for step in steps:
            if step == "bn" and self.norm.make:
                x = self.norm.make(self.model, f"{name}_{self.norm.suffix}")(x)
            elif step == "relu":
                x = layers.ReLU(name=f"{name}_relu")(x)
        return x

    def conv(self, x, filters, kernel, stride, name, after=()):
        """NAME_conv (a bias only without a norm) and the steps after it. A 3x3
        convolution (always one of the main path) is a layer response of Fig. 7:
        marked after its norm, where that is its first step, else right after it."""
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=self.norm.make is None,
                          kernel_initializer="he_normal", kernel_regularizer=self.regularizer,
                          name=f"{name}_conv")(x)
        if kernel == 3:
            normed = after[:1] == ("bn",) and self.norm.make is not None
            x = Response(name=f"{name}_response")(self.steps(x, after[:1], name) if normed else x)
            after = after[1:] if normed else after
        return self.steps(x, after, name)

    def conv_bn(self, x, filters, kernel, stride, name, relu=True):
        """Convolution + BN (+ ReLU): stems and VGG."""
        return self.conv(x, filters, kernel, stride, name, ("bn", "relu") if relu else ("bn",))

    def shortcut(self, x, preactivated, filters, stride, name):
        """The shortcut branch of a block (He et al. 2015, Table 3 options A/B/C): a
        projection reads the pre-activated input, as the paper's pre-activation units."""
        reshapes = stride != 1 or x.shape[-1] != filters
        if self.form.projects_always or self.projects(reshapes):
            return self.conv(preactivated, filters, 1, stride, f"{name}_{SHORTCUT_PREFIX}", ("bn",))
        if reshapes:
            return ZeroPadShortcut(filters, stride, name=f"{name}_{SHORTCUT_PREFIX}_pad")(x)
        return x

    def block(self, x, convs, filters, stride, name, first):
        """One unit: its residual function (`convs`: BLOCKS' (kernel, width multiple)
        pairs; the 3x3 one strided, as torchvision), the shortcut merged in by the
        shortcut form, and the unit's steps. The plain twin has the same layers
        without the merge and shortcut."""
        preactivated = x if first else self.steps(x, self.unit.before, f"{name}_pre")
        strided = [kernel for kernel, _ in convs].index(3)
        y = preactivated
        for index, (kernel, multiple) in enumerate(convs):
            last = index == len(convs) - 1
            y = self.conv(y, filters * multiple, kernel, stride if index == strided else 1, f"{name}_{index + 1}",
                          self.unit.after_last if last else self.unit.between)
        out_width = filters * convs[-1][1]
        if self.residual:
            shortcut = self.shortcut(x, preactivated, out_width, stride, name)
            y = self.form.merge(self, y, shortcut, preactivated, out_width, stride, name)
        return self.steps(y, self.unit.after_addition, f"{name}_out")

    def make_stage(self, x, convs, filters, blocks, stride, name, first_stage=False):
        """A stage of `blocks` blocks; the first one changes width and resolution."""
        for index in range(blocks):
            x = self.block(x, convs, filters, stride if index == 0 else 1, f"{name}_block{index + 1}",
                           first=first_stage and index == 0)
        return x

    def classifier(self, x, num_classes):
        if self.preactivation:
            x = self.steps(x, ("bn", "relu"), "final")
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
    convs = BLOCKS[block_of(model)]
    x = STEMS[model.stem](b, inputs)
    for index, (filters, blocks) in enumerate(zip(RESNET_WIDTHS, RESNET_STAGES[model.depth][1])):
        x = b.make_stage(x, convs, filters, blocks, 1 if index == 0 else 2, f"stage{index + 1}", index == 0)
    return b.classifier(x, num_classes)


def _resnet_cifar(b: _Builder, inputs, model, num_classes):
    block = block_of(model)
    blocks = (model.depth - 2) // (3 * BLOCK_LAYERS[block])
    x = b.conv_bn(inputs, CIFAR_WIDTHS[0], 3, 1, "stem")
    for index, filters in enumerate(CIFAR_WIDTHS):
        x = b.make_stage(x, BLOCKS[block], filters, blocks, 1 if index == 0 else 2, f"stage{index + 1}", index == 0)
    return b.classifier(x, num_classes)


def _vgg(b: _Builder, inputs, model, num_classes):
    x = inputs
    for index, (filters, convs) in enumerate(zip(VGG_WIDTHS, VGG_BLOCKS[model.depth])):
        for conv in range(convs):
            x = b.conv_bn(x, filters, 3, 1, f"block{index + 1}_{conv + 1}")  # BN: a step model.norm may drop
        x = layers.MaxPooling2D(2, name=f"block{index + 1}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in range(2):
        x = layers.Dense(model.dense_units, activation="relu", kernel_initializer="he_normal",
                         kernel_regularizer=b.regularizer, name=f"dense{index + 1}")(x)
        x = layers.Dropout(model.dropout, name=f"dense{index + 1}_dropout")(x)
    return b.dense_softmax(x, num_classes)


class Architecture(NamedTuple):
    build: Callable  # (builder, input, model params, classes) -> class probabilities
    depths: Callable[[str], str]  # block -> the allowed depths, for messages
    has_depth: Callable[[int, str], bool]  # (depth, block) -> allowed
    blocks: Callable[[int], tuple[str, ...]]  # depth -> the blocks allowed (first: what `auto` means)
    has_shortcuts: bool = True  # False: there is no residual form, only the plain one
    min_side: int = 1  # smallest input side length
    narrowest: int = 16  # the fewest channels of any of its layers (group norm's groups must divide it)


def _cifar_depths(block: str) -> str:
    per = 3 * BLOCK_LAYERS[block]
    return f"{per}n+2: " + ", ".join(str(per * n + 2) for n in (1, 2, 3, 6, 9, 18)) + ", ..."


# `model.arch`: what `model.depth` and `model.block` may be for each, and how it is built.
ARCHITECTURES = {
    "resnet": Architecture(_resnet, lambda block: ", ".join(map(str, RESNET_STAGES)),
                           lambda depth, block: depth in RESNET_STAGES,
                           lambda depth: (RESNET_STAGES[depth][0],) if depth in RESNET_STAGES else (),
                           narrowest=RESNET_WIDTHS[0]),
    "resnet_cifar": Architecture(_resnet_cifar, _cifar_depths,
                                 lambda depth, block: depth > 2 and (depth - 2) % (3 * BLOCK_LAYERS[block]) == 0,
                                 lambda depth: ("basic", "bottleneck"), narrowest=CIFAR_WIDTHS[0]),
    "vgg": Architecture(_vgg, lambda block: ", ".join(map(str, VGG_BLOCKS)), lambda depth, block: depth in VGG_BLOCKS,
                        lambda depth: (), has_shortcuts=False, min_side=VGG_MIN_SIDE, narrowest=VGG_WIDTHS[0]),
}


def min_side(model) -> int:
    """The smallest input side the arm builds at (a user's builder: its own business)."""
    return 1 if builders.is_reference(model.arch) else ARCHITECTURES[model.arch].min_side


def block_of(model) -> str | None:
    """`model.block` resolved: `auto` is Table 1's block for `resnet`, basic for
    `resnet_cifar`; VGG and a user's builder have none."""
    if builders.is_reference(model.arch):
        return None
    allowed = ARCHITECTURES[model.arch].blocks(model.depth)
    return (allowed[0] if allowed else None) if model.block == "auto" else model.block


def params_floor(model) -> int:
    """Parameters the arm has at least, from its tables, without building it: each
    convolution of a CIFAR ResNet has at least width x width weights, VGG's two
    hidden dense layers at least dense_units x (512 + dense_units)."""
    if model.arch == "resnet_cifar":
        per_block = BLOCK_LAYERS[block_of(model)]
        return sum((model.depth - 2) // (3 * per_block) * per_block * width * width for width in CIFAR_WIDTHS)
    if model.arch == "vgg":
        return model.dense_units * (VGG_WIDTHS[-1] + model.dense_units)
    return 0  # the ImageNet ResNets: Table 1's five sizes


def _too_large(model) -> tuple | None:
    if model.depth > MAX_LAYERS:
        return ("model.depth", model.depth, f"at most {MAX_LAYERS:,} weighted layers", None)
    if (floor := params_floor(model)) > MAX_PARAMS:
        key, value = ("model.dense_units", model.dense_units) if model.arch == "vgg" else ("model.depth", model.depth)
        return (key, value, f"a network of at most {MAX_PARAMS:,} parameters (this one has at least {floor:,})", None)
    return None


def refusal(model) -> tuple | None:
    """Why sections.ModelParams `model` cannot be built, as (key, value, allowed, fix),
    or None: checked when params load, so every combination builds or stops there."""
    if builders.is_reference(model.arch):
        return builders.refusal(model.arch, model.options)
    if model.options:
        return ("model.options", model.options, f"{{}} for {model.arch} (options are a builder's of your own)",
                "drop model.options, or set model.arch: package.module:function")
    arch = ARCHITECTURES[model.arch]
    allowed = arch.blocks(model.depth)
    if model.block != "auto" and model.block not in allowed:
        return ("model.block", model.block, f"auto{''.join(', ' + b for b in allowed)} for {model.arch}"
                f"{' depth ' + str(model.depth) if model.arch == 'resnet' else ''}",
                "pass -S model.block=auto (Table 1 fixes the ImageNet ResNets' blocks; VGG has none)")
    block = block_of(model)
    if not arch.has_depth(model.depth, block or "basic"):
        return ("model.depth", model.depth, f"{arch.depths(block or 'basic')} for {model.arch}"
                f"{' with ' + block + ' blocks' if model.arch == 'resnet_cifar' else ''}", None)
    if too_large := _too_large(model):
        return too_large
    if model.norm == "group" and arch.narrowest % model.norm_groups:
        return ("model.norm_groups", model.norm_groups, f"a divisor of {arch.narrowest} for {model.arch} (the "
                "channels of its narrowest layer, which each group norm splits into groups)", None)
    if model.residual and not arch.has_shortcuts:
        return ("model.residual", True, f"false for {model.arch} (it has no shortcuts)",
                f"pass `-S model.residual=false` with model.arch={model.arch}")
    if not arch.has_shortcuts and (model.unit != "original" or model.shortcut_form != "identity"):
        key, value = ("model.unit", model.unit) if model.unit != "original" else ("model.shortcut_form",
                                                                                  model.shortcut_form)
        return (key, value, f"the default for {model.arch} (it has no residual units)", f"drop -S {key}")
    if not model.residual and model.shortcut_form != "identity":
        return ("model.shortcut_form", model.shortcut_form, "identity for a plain twin (it has no shortcut to vary)",
                "grid over model.shortcut_form with model.residual=true only")
    return None


def model_name(model) -> str:
    """`resnet34`, its plain twin `plain34`, `resnet_cifar56`, `vgg16`, ... for
    sections.ModelParams (or anything with its arch, depth and residual); a user's
    builder's function name."""
    if builders.is_reference(model.arch):
        return builders.name(model.arch)
    prefix = model.arch
    if ARCHITECTURES[model.arch].has_shortcuts and not model.residual:
        prefix = prefix.replace("resnet", "plain")
    return f"{prefix}{model.depth}"


def build_model(model, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Builds the uncompiled network that sections.ModelParams `model` describes
    (validated when the params loaded)."""
    if builders.is_reference(model.arch):  # a builder of the user's own: its size is known once built
        net = builders.build(model.arch, model.options, input_shape, num_classes)
        if net.count_params() > MAX_PARAMS:
            raise ParamsError(f"params: {model.arch} built a network of {net.count_params():,} parameters; allowed: "
                              f"at most {MAX_PARAMS:,}. Fix: pass smaller model.options.")
        return net
    architecture = ARCHITECTURES[model.arch]
    if min(input_shape[:2]) < architecture.min_side:
        raise ValueError(f"{model.arch} needs images of at least {architecture.min_side}x{architecture.min_side}; "
                         f"got {input_shape}. Fix: raise data.image_size.")
    inputs = keras.Input(shape=input_shape, name="image")
    outputs = architecture.build(_Builder(model), inputs, model, num_classes)
    return keras.Model(inputs, outputs, name=model_name(model))
