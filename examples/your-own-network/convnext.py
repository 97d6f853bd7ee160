"""A small ConvNeXt-style network (Liu et al., 2022, "A ConvNet for the 2020s") as a
builder for the ablation suite, with two components to ablate:

- layer_scale: each block's residual branch scaled per channel by a learned factor
  that starts at 1e-6 (the paper's), or left unscaled;
- kernel_size: the depthwise convolution's kernel, 7 (the paper's) or 3.

Put it in a project's nets/ (`ablate init`) and set `model.arch: nets.convnext:convnext`;
each keyword-only parameter is a knob (`-S model.options.kernel_size=3`). At the
defaults it has ~0.4M parameters for 10 classes."""
from typing import Literal

import keras
from keras import layers


def _block(x, width: int, kernel_size: int, layer_scale: bool):
    """Depthwise k x k conv, LayerNorm, 4x pointwise expansion with GELU, projection;
    the branch (scaled per channel where layer_scale) added to the input."""
    y = layers.DepthwiseConv2D(kernel_size, padding="same")(x)
    y = layers.LayerNormalization(epsilon=1e-6)(y)
    y = layers.Dense(4 * width, activation="gelu")(y)
    y = layers.Dense(width)(y)
    if layer_scale:  # a per-channel factor: a 1x1 depthwise conv without bias, started at 1e-6
        y = layers.DepthwiseConv2D(1, use_bias=False, depthwise_initializer=keras.initializers.Constant(1e-6))(y)
    return layers.Add()([x, y])


def convnext(input_shape, num_classes, *, layer_scale: bool = True, kernel_size: Literal[3, 7] = 7,
             width: int = 32, blocks_per_stage: int = 2) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(width, 2, strides=2)(x)  # a 2x2 patchify stem (the paper's is 4x4, for 224 px)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    for stage, stage_width in enumerate((width, 2 * width, 4 * width)):
        if stage:  # downsample between stages: LayerNorm, then a 2x2 stride-2 conv
            x = layers.LayerNormalization(epsilon=1e-6)(x)
            x = layers.Conv2D(stage_width, 2, strides=2)(x)
        for _ in range(blocks_per_stage):
            x = _block(x, stage_width, kernel_size, layer_scale)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x), name="convnext")
