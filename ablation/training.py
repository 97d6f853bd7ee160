"""Training one arm on one dataset with one seed: Keras fit with the paper's
recipe, dvclive logging, per-epoch checkpoints that a rerun resumes from, and
divergence recorded as a result rather than a crash."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import keras
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from ablation import inputs, models, records
from ablation.layout import RunFiles
from ablation.recipe import make_optimizer, pixel_moments, with_normalization
from ablation.params import ParamsError, RunSettings


class LogLearningRate(keras.callbacks.Callback):
    """Adds the learning rate at the start of each epoch to its logs (so dvclive records it)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._rate


class EpochTimer(keras.callbacks.Callback):
    """Wall time of the training epochs, split into training and the validation
    pass at each epoch's end (data caching before fit is in neither)."""

    def __init__(self):
        super().__init__()
        self.seconds, self.validation_seconds, self.epochs = 0.0, 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.validation_seconds += time.perf_counter() - self._test_start

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self._start
        self.epochs += 1


QUICK_RUN_HINT = ("over 2 hours on this machine. For a CPU, see the README's 'A quick run on a CPU' "
                  "(CIFAR ResNets, data.limit, fewer epochs) or run on a GPU")


class ProgressLine(keras.callbacks.Callback):
    """Progress on stdout for long CPU runs: once the first steps are timed, the
    estimated training time (with a hint when it passes two hours); then a line
    with the running loss and the ETA at most every `every` seconds. `verbose=2`
    prints only at epoch ends, minutes apart on a CPU, and Keras' progress bar
    floods DVC's logs with carriage returns."""

    def __init__(self, steps_per_epoch: int, every: float = 30.0):
        super().__init__()
        self.steps_per_epoch, self.every = steps_per_epoch, every
        self._first_step = None  # (time, step) at the end of the first step, which includes tracing
        self._estimated = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._start = epoch, time.perf_counter()
        self._last = self._start

    def _remaining_seconds(self, step: int, per_step: float) -> tuple[float, float]:
        epoch_left = per_step * (self.steps_per_epoch - step)
        return epoch_left, epoch_left + (self.params["epochs"] - self._epoch - 1) * per_step * self.steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        now, step = time.perf_counter(), batch + 1
        if self._first_step is None:
            self._first_step = (now, step)
        elif not self._estimated and step > self._first_step[1]:
            per_step = (now - self._first_step[0]) / (step - self._first_step[1])
            total = self._remaining_seconds(step, per_step)[1]
            print(f"estimated training time: {total / 60:.0f} min ({per_step * 1000:.0f} ms/step)"
                  + (f": {QUICK_RUN_HINT}" if total > 2 * 3600 else ""), flush=True)
            self._estimated = True
        if now - self._last < self.every:
            return
        self._last = now
        per_step = (now - self._start) / step
        epoch_left, total_left = self._remaining_seconds(step, per_step)
        loss = (logs or {}).get("loss")
        print(f"  epoch {self._epoch + 1}/{self.params['epochs']} step {step}/{self.steps_per_epoch}"
              + (f" loss {float(loss):.4f}" if loss is not None else "")
              + f", {per_step * 1000:.0f} ms/step, epoch ETA {epoch_left:.0f} s, training ETA {total_left / 60:.1f} min",
              flush=True)


def set_threads(threads: int) -> None:
    """Caps TensorFlow's op thread pools, which run tf.data under every backend and
    the model under TensorFlow, and XLA's CPU pool under JAX (0 = the default,
    every core). Must run before the first op."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if keras.backend.backend() == "jax":  # read when JAX creates its CPU client, at the first op
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                       f"intra_op_parallelism_threads={threads}").strip()


class Replicas(NamedTuple):
    """Where the model's variables are made (`scope`) and over how many devices a batch is split."""
    scope: contextlib.AbstractContextManager
    count: int
    name: str


# `train.distribute`: whether to replicate over the devices, given the GPUs there are.
DISTRIBUTIONS = {
    "auto": lambda gpus: len(gpus) > 1,
    "none": lambda gpus: False,
    "mirrored": lambda gpus: True,  # without GPUs: every logical CPU
}


def make_replicas(setting: str) -> Replicas:
    """Data parallelism over all GPUs (or, without GPUs, all logical CPUs) when asked,
    or automatically when there are several GPUs; otherwise one device. TensorFlow
    uses tf.distribute's MirroredStrategy, JAX keras.distribution's DataParallel
    (tf.distribute drives only TensorFlow variables); the torch backend trains on
    one device."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        gpus = tf.config.list_logical_devices("GPU")
        if DISTRIBUTIONS[setting](gpus):
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            strategy = tf.distribute.MirroredStrategy(devices=devices)
        else:
            strategy = tf.distribute.get_strategy()
        return Replicas(strategy.scope(), strategy.num_replicas_in_sync, type(strategy).__name__)
    if backend == "jax":
        gpus = [d for d in keras.distribution.list_devices() if d.startswith("gpu")]
        if DISTRIBUTIONS[setting](gpus):
            devices = gpus or keras.distribution.list_devices("cpu")
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            return Replicas(contextlib.nullcontext(), len(devices), "DataParallel")
        return Replicas(contextlib.nullcontext(), 1, "one device")
    if DISTRIBUTIONS[setting]([]):  # asks for replicas whatever the GPUs
        raise ParamsError(f"train.distribute=mirrored is not supported on the {backend} backend. "
                          "Fix: use KERAS_BACKEND=tensorflow or jax, or train.distribute=auto.")
    return Replicas(contextlib.nullcontext(), 1, "one device")


def jit_compile(setting: bool) -> bool:
    """train.jit_compile applies to TensorFlow (XLA is slower on CPUs there). JAX
    always compiles: uncompiled, it dispatches every op on its own."""
    return setting or keras.backend.backend() == "jax"


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def resumed_epoch(backup_dir: Path) -> int:
    """The epoch BackupAndRestore will resume from (0 for a fresh run)."""
    metadata = backup_dir / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


def train(run: RunSettings, seed: int, fetched_dir, split_dir, out_dir, backup_dir) -> dict:
    """Trains and writes the model, dvclive's logs and the train metrics of
    layout.RunFiles(out_dir); returns the train metrics."""
    cfg, size = run.train, run.image_size
    files, backup_dir = RunFiles(Path(out_dir)), Path(backup_dir)
    info = records.read_info(fetched_dir)
    set_threads(cfg.threads)
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_dtype_policy(cfg.mixed_precision)

    cached, rows = inputs.load_split(fetched_dir, split_dir, "train", size)
    val_cached, val_rows = inputs.load_split(fetched_dir, split_dir, "val", size)
    print(f"train {run.dataset} seed {seed}: {len(rows):,} training and {len(val_rows):,} validation images "
          f"at {size}x{size}", flush=True)
    if run.per_dataset_train:
        print(f"train.per_dataset.{run.dataset} in effect: " + ", ".join(
            f"{key} {value!r} (train.{key} is {base!r})" for key, (base, value) in run.per_dataset_train.items()),
            flush=True)
    mean, variance = pixel_moments(*inputs.pixel_sums(cached))
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)

    replicas = make_replicas(cfg.distribute)
    print(f"training on {replicas.count} replica(s) ({replicas.name}), global batch {cfg.batch_size}, "
          f"Keras backend {keras.backend.backend()}", flush=True)
    with replicas.scope:
        net = models.build_model(run.model, (size, size, 3), len(info["classes"]))
        model = with_normalization(net, mean, variance)
        model.compile(optimizer=make_optimizer(cfg, steps_per_epoch), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit_compile(cfg.jit_compile),
                      steps_per_execution=cfg.steps_per_execution)
    description = models.describe(net)

    first_epoch = resumed_epoch(backup_dir)
    if first_epoch:
        print(f"resuming from the checkpoint after epoch {first_epoch} in {backup_dir}", flush=True)
    batches = inputs.training_batches(cached, len(rows), cfg.batch_size, run.augment,
                                    seed, first_epoch, cfg.epochs, cfg.threads)
    validation = inputs.evaluation_batches(val_cached, len(val_rows), cfg.batch_size) if val_rows else None
    live = Live(str(files.live), dvcyaml=False, save_dvc_exp=False, resume=bool(first_epoch))
    timer = EpochTimer()
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        keras.callbacks.TerminateOnNaN(),
        timer,
        LogLearningRate(),
        ProgressLine(steps_per_epoch),
        DVCLiveCallback(live=live),  # last: logs what the callbacks before it added
    ]
    history = model.fit(batches, epochs=cfg.epochs, initial_epoch=first_epoch, steps_per_epoch=steps_per_epoch,
                        validation_data=validation, callbacks=callbacks, verbose=2,
                        shuffle=False)  # training_batches shuffles, seeded per epoch

    losses = history.history.get("loss", [])
    diverged = any(not _finite(v) for v in losses)
    if diverged:  # TerminateOnNaN ends fit without BackupAndRestore's cleanup
        shutil.rmtree(backup_dir, ignore_errors=True)
    files.dir.mkdir(parents=True, exist_ok=True)
    model.save(files.model)
    last = {k: v[-1] for k, v in history.history.items() if v}
    metrics = {
        "model": description["model"],
        "backend": keras.backend.backend(),
        "trainable_params": description["trainable_params"],
        "flops": description["flops"],
        "diverged": diverged,
        "epochs": cfg.epochs,
        "epochs_run_here": timer.epochs,
        "train_loss": last.get("loss"),
        "train_accuracy": last.get("accuracy"),
        "val_loss": last.get("val_loss"),
        "val_accuracy": last.get("val_accuracy"),
        "train_seconds": round(timer.seconds, 2),
        "validation_seconds": round(timer.validation_seconds, 2),
        # Training images/s: the fit loop and input pipeline included, validation passes not.
        "images_per_second": round(timer.epochs * len(rows) / (timer.seconds - timer.validation_seconds), 1)
        if timer.seconds > timer.validation_seconds else None,
    }
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    files.train_metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
