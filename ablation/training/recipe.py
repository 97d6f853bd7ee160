"""The paper's training recipe as Keras objects, in keras.ops only so that it runs
under every Keras backend (and on a machine without TensorFlow): the learning
rate schedule, the optimizer, and the input normalization built into the model."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import ops


def _step_decay(base, step, total_steps, boundaries):
    drops = sum(ops.cast(step >= b * total_steps, "float32") for b in boundaries)
    return base * ops.power(0.1, drops)


def _cosine_decay(base, step, total_steps, boundaries):
    progress = ops.clip(step / max(total_steps, 1), 0.0, 1.0)
    return base * 0.5 * (1.0 + ops.cos(math.pi * progress))


# `train.schedule`'s choices: (base lr, step, total steps, step boundaries) -> lr.
# keras.ops only, so a schedule runs under every Keras backend.
SCHEDULES = {
    "step": _step_decay,  # / 10 at each boundary (fractions of training)
    "cosine": _cosine_decay,
    "constant": lambda base, step, total_steps, boundaries: base,
}


@keras.saving.register_keras_serializable(package="ablation")
class StudySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from lr/10, then one of SCHEDULES. One class because Keras'
    built-in schedules cannot put a warm-up in front of a piecewise-constant decay."""

    def __init__(self, learning_rate, total_steps, kind, boundaries, warmup_steps):
        self.learning_rate, self.total_steps, self.kind = learning_rate, total_steps, kind
        self.boundaries, self.warmup_steps = list(boundaries), warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        base = ops.convert_to_tensor(self.learning_rate, "float32")
        lr = SCHEDULES[self.kind](base, step, self.total_steps, self.boundaries)
        if self.warmup_steps:
            warm = base * (0.1 + 0.9 * step / self.warmup_steps)
            lr = ops.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps, "kind": self.kind,
                "boundaries": self.boundaries, "warmup_steps": self.warmup_steps}


@dataclass(frozen=True)
class Optimizer:
    """One `train.optimizer` choice. make(schedule, train params, weight decay) builds
    it. With `decoupled_decay` it decays the weights itself (Loshchilov & Hutter's
    AdamW), so the model is built without the L2 term `model.weight_decay` adds
    otherwise: both at once would decay twice."""
    make: Callable[..., keras.optimizers.Optimizer]
    decoupled_decay: bool = False


def _adamw(schedule, train, weight_decay):
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, clipnorm=train.clipnorm)
    # As the L2 term: kernels only, never the norms' scales and shifts or the biases.
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


# `train.optimizer`'s choices; momentum is SGD's only.
OPTIMIZERS = {
    "sgd": Optimizer(lambda schedule, train, weight_decay: keras.optimizers.SGD(
        schedule, momentum=train.momentum, clipnorm=train.clipnorm)),
    "adam": Optimizer(lambda schedule, train, weight_decay: keras.optimizers.Adam(schedule, clipnorm=train.clipnorm)),
    "adamw": Optimizer(_adamw, decoupled_decay=True),
}


def model_for(train, model):
    """The model params the net is built from: `model` as it is, or without its L2
    term where the optimizer decays the weights itself."""
    return dataclasses.replace(model, weight_decay=0.0) if OPTIMIZERS[train.optimizer].decoupled_decay else model


def make_optimizer(train, steps_per_epoch: int, weight_decay: float) -> keras.optimizers.Optimizer:
    """The optimizer and schedule that sections.TrainParams `train` names; `weight_decay`
    (`model.weight_decay`) is used by an optimizer that decays the weights itself."""
    schedule = StudySchedule(train.learning_rate, train.epochs * steps_per_epoch, train.schedule,
                             train.step_boundaries, train.warmup_epochs * steps_per_epoch)
    return OPTIMIZERS[train.optimizer].make(schedule, train, weight_decay)


def with_normalization(net: keras.Model, mean: np.ndarray, variance: np.ndarray) -> keras.Model:
    """Prepends uint8 -> float and normalization by train-split statistics (per-pixel
    mean as in the paper, per-channel std), so the saved model takes raw images.
    The statistics come from pixel_moments (over data.pixel_sums) rather than
    Normalization.adapt, which would also divide by a per-pixel variance."""
    inputs = keras.Input(shape=net.input_shape[1:], dtype="uint8", name="raw_image")
    x = keras.layers.Normalization(axis=(1, 2, 3), mean=mean,
                                   variance=np.broadcast_to(variance, mean.shape), name="normalize")(
        keras.layers.Rescaling(1.0, dtype="float32", name="to_float")(inputs))
    return keras.Model(inputs, net(x), name=net.name)


def pixel_moments(total: np.ndarray, total_sq: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and per-channel variance from sums over `count` images of the
    pixels (HxWxC) and of the squared pixels per channel (C): what
    with_normalization takes."""
    mean = total / count
    pixels = count * mean.shape[0] * mean.shape[1]
    variance = total_sq / pixels - np.square(mean.mean(axis=(0, 1)))
    return mean.astype(np.float32), variance.astype(np.float32)

