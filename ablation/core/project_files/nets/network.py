"""This project's network: `model.arch: nets.network:build` in params.yaml. The suite
calls build(input_shape, num_classes, **options) and trains the keras.Model it
returns. Each keyword-only parameter below is a knob of the study: set it with
`-S model.options.NAME=VALUE`, or grid over it with
`ablate study --grid model.options.NAME=A,B`. Its annotation is checked (bool, int,
float, str, Literal[...]) and its default recorded with every run.

Editing this file makes train stale (`dvc status`): the folder nets/ is a dependency
of train in dvc.yaml, and the file's hash is part of each run's fingerprint."""
from typing import Literal

import keras
from keras import layers


def build(input_shape, num_classes, *, width: int = 16, blocks: int = 2, residual: bool = True,
          kernel_size: Literal[3, 5] = 3) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    for _ in range(blocks):
        y = layers.ReLU()(layers.BatchNormalization()(x))
        y = layers.Conv2D(width, kernel_size, padding="same", use_bias=False)(y)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(width, kernel_size, padding="same", use_bias=False)(y)
        x = layers.Add()([x, y]) if residual else y
    x = layers.GlobalAveragePooling2D()(layers.ReLU()(layers.BatchNormalization()(x)))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x), name="network")
