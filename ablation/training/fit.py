"""Training one arm on one dataset with one seed: Keras fit with the paper's
recipe, dvclive logging, per-epoch checkpoints that a rerun resumes from, and
divergence recorded as a result rather than a crash."""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import keras
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from ablation.core import atomic_files, declarations, machine, precision, reading
from ablation.core.layout import INFO_FILE, MANIFEST_FILE, CheckpointFiles, RunFiles, inside
from ablation.core.params import ParamsError, RunSettings
from ablation.data import shards, splitting
from ablation.nets import anatomy, builders, models
from ablation.training import inputs
from ablation.training.callbacks import DivergenceGuard, EpochLog, EpochTimer, LogLearningRate, ProgressLine
from ablation.training.recipe import make_optimizer, model_for, pixel_moments, with_normalization


def set_threads(threads: int) -> None:
    """Caps TensorFlow's op thread pools, which run tf.data under every backend and
    the model under TensorFlow, XLA's CPU pool under JAX and PyTorch's intra-op pool
    under torch (0 = the default, every core). Must run before the first op."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if keras.backend.backend() == "jax":  # read when JAX creates its CPU client, at the first op
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                       f"intra_op_parallelism_threads={threads}").strip()
        if keras.backend.backend() == "torch":
            import torch
            torch.set_num_threads(threads)


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


def _digest(path: Path) -> str:
    data = reading.read_bytes(path, "manifest", "run the fetch and split stages.", optional=True)
    return "missing" if data is None else hashlib.sha256(data).hexdigest()


def run_fingerprint(run: RunSettings, seed: int, fetched_dir, split_dir) -> dict:
    """Everything that shapes a run's training: the knobs the train stage reads
    (declarations.fingerprint), the seed, the backend and the identity of the
    fetched data and split it reads (hashes of info.json and manifest.csv), and a
    user's builder's source and options (nets/builders.identity)."""
    fingerprint = {"knobs": declarations.fingerprint(run), "seed": seed, "backend": keras.backend.backend(),
                   "fetched": _digest(Path(fetched_dir) / INFO_FILE),
                   "manifest": _digest(Path(split_dir) / MANIFEST_FILE)}
    if builders.is_reference(run.model.arch):  # a user's network: its source and every option's value
        fingerprint["builder"] = builders.identity(run.model.arch, run.model.options)
    return fingerprint


def initial_weights_key(net: keras.Model) -> str:
    """A hash of a freshly built network's weights: two arms whose seed-s runs
    share it start from the same weights (plain and residual twins of option A do)."""
    digest = hashlib.sha256()
    for weight in net.weights:
        digest.update(keras.ops.convert_to_numpy(weight.value).tobytes())
    return digest.hexdigest()[:16]


def data_order_key(run: RunSettings, fingerprint: dict) -> str:
    """A hash of what fixes the order and augmentation of the training batches
    (inputs.training_batches): the data, split, seed, augmentation, image size and
    batch size. Two runs that share it see the same batches. (The mapping hashed is
    the one recorded runs hashed, so their keys still compare.)"""
    return run_key({key: fingerprint[key] for key in ("fetched", "manifest", "seed")}
                   | {"data": {"image_size": run.image_size, "augment": run.augment, "limit": run.limit},
                      "batch_size": run.train.batch_size})


def run_key(fingerprint: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def _set_aside(state: CheckpointFiles, why: str) -> None:
    aside = state.dir.with_name(f"{state.dir.name}.set-aside")
    shutil.rmtree(aside, ignore_errors=True)
    state.dir.rename(aside)
    print(f"notice: the checkpoint in {state.dir} cannot be resumed ({why}); set aside in {aside}, "
          "training starts over", flush=True)


def resume_state(state: CheckpointFiles, model: keras.Model) -> tuple[int, dict]:
    """(the epoch to resume after, the epoch log) of a checkpoint that loads into
    `model`; a damaged one is set aside, and training starts over at (0, {})."""
    metadata = state.backup / "training_metadata.json"
    if not metadata.exists():
        shutil.rmtree(state.dir, ignore_errors=True)  # a run killed before its first checkpoint
        return 0, {}
    try:
        epoch = int(reading.read_json(metadata, "record", "")["epoch"])
        log = reading.read_json(state.epochs, "record", "")
        if len(log["epochs"]) < epoch:
            raise ValueError(f"{state.epochs.name} has {len(log['epochs'])} epochs, the checkpoint {epoch}")
        model.load_weights(state.backup / "latest.weights.h5")
    except Exception as error:  # JSON, HDF5 and Keras raise many kinds for a damaged or foreign file
        _set_aside(state, f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}")
        return 0, {}
    log["epochs"] = log["epochs"][:epoch]
    return epoch, log


class Prepared(NamedTuple):
    """What a run trains with, once its data is read and its model built."""
    fingerprint: dict
    state: CheckpointFiles
    machine: dict
    policy: str
    rows: list
    val_rows: list
    cached: object
    val_cached: object
    model: keras.Model
    net: keras.Model
    steps_per_epoch: int
    initial_weights: str = ""  # initial_weights_key(net), taken before a checkpoint loads


def _precision(recipe, here: dict) -> str:
    """The dtype policy the run trains in (set as Keras' global policy), after a
    warning where this machine emulates it."""
    if warning := precision.emulation_warning(recipe.mixed_precision, here):
        print(warning, file=sys.stderr, flush=True)
    policy = precision.resolve(recipe.mixed_precision, here)
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def _compiled_model(run: RunSettings, classes: int, cached, steps_per_epoch: int) -> tuple[keras.Model, keras.Model]:
    """(the network, the network behind the input normalization), compiled, on the replicas."""
    recipe, size = run.train, run.image_size
    mean, variance = pixel_moments(*inputs.pixel_sums(cached))
    replicas = make_replicas(recipe.distribute)
    print(f"training on {replicas.count} replica(s) ({replicas.name}), global batch {recipe.batch_size}, "
          f"Keras backend {keras.backend.backend()}", flush=True)
    with replicas.scope:
        net = models.build_model(model_for(recipe, run.model), (size, size, 3), classes)
        model = with_normalization(net, mean, variance)
        model.compile(optimizer=make_optimizer(recipe, steps_per_epoch, run.model.weight_decay),
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit_compile(recipe.jit_compile),
                      steps_per_execution=recipe.steps_per_execution)
    return net, model


def prepare(run: RunSettings, seed: int, fetched_dir, split_dir, checkpoints_dir) -> Prepared:
    """The run's data read, its precision set and its model built, seeded; its
    checkpoint directory named by its fingerprint's key."""
    recipe, size = run.train, run.image_size
    set_threads(recipe.threads)  # before the first TensorFlow op (check_manifest reads the shards)
    info = shards.read_info(fetched_dir)
    splitting.check_manifest(fetched_dir, split_dir)
    fingerprint = run_fingerprint(run, seed, fetched_dir, split_dir)
    keras.utils.set_random_seed(seed)
    here = machine.describe(keras.backend.backend(), recipe.threads)
    policy = _precision(recipe, here)
    cached, rows = inputs.load_split(fetched_dir, split_dir, "train", size)
    val_cached, val_rows = inputs.load_split(fetched_dir, split_dir, "val", size)
    print(f"train {run.dataset} seed {seed}: {len(rows):,} training and {len(val_rows):,} validation images "
          f"at {size}x{size}", flush=True)
    if run.per_dataset_train:
        print(f"train.per_dataset.{run.dataset} in effect: " + ", ".join(
            f"{key} {value!r} (train.{key} is {base!r})" for key, (base, value) in run.per_dataset_train.items()),
            flush=True)
    steps_per_epoch = math.ceil(len(rows) / recipe.batch_size)
    net, model = _compiled_model(run, len(info["classes"]), cached, steps_per_epoch)
    return Prepared(fingerprint, CheckpointFiles(inside(checkpoints_dir, run_key(fingerprint))), here, policy,
                    rows, val_rows, cached, val_cached, model, net, steps_per_epoch)


def _resume(ready: Prepared) -> tuple[int, dict]:
    """(the epoch to go on after, the epoch log so far): from the run's checkpoint, else a fresh start."""
    state = ready.state
    first_epoch, log = resume_state(state, ready.model) if state.dir.exists() else (0, {})
    if first_epoch:
        print(f"resuming from the checkpoint after epoch {first_epoch} in {state.dir}", flush=True)
    else:
        shutil.rmtree(state.live, ignore_errors=True)
        state.dir.mkdir(parents=True, exist_ok=True)
        atomic_files.write_json(state.fingerprint, ready.fingerprint)
    return first_epoch, log


def _fit(run: RunSettings, seed: int, ready: Prepared, first_epoch: int, epochs: list, guard, timer) -> None:
    """Keras fit from `first_epoch` on, logging each epoch (into `epochs`), dvclive's
    curves and a checkpoint."""
    recipe, state = run.train, ready.state
    batches = inputs.training_batches(ready.cached, len(ready.rows), recipe.batch_size, run.augment,
                                      seed, first_epoch, recipe.epochs, recipe.threads)
    validation = inputs.evaluation_batches(ready.val_cached, len(ready.val_rows), recipe.batch_size) \
        if ready.val_rows else None
    # dvclive logs into the checkpoint's directory, whose logs replace the run's
    # live/ only at the end: a killed run keeps the previous run's logs whole.
    live = Live(str(state.live), dvcyaml=False, save_dvc_exp=False, resume=bool(first_epoch))
    callbacks = [
        LogLearningRate(),
        # The epoch's logs are written before its checkpoint, so a kill between the
        # two leaves logs a checkpoint can resume with (resume_state truncates them).
        EpochLog(state.epochs, guard, epochs),
        DVCLiveCallback(live=live),  # after LogLearningRate: logs what it added
        # Kept after the last epoch until the outputs are written (then removed by train).
        keras.callbacks.BackupAndRestore(str(state.backup), delete_checkpoint=False),
        guard,
        timer,
        ProgressLine(ready.steps_per_epoch),
    ]
    ready.model.fit(batches, epochs=recipe.epochs, initial_epoch=first_epoch, steps_per_epoch=ready.steps_per_epoch,
                    validation_data=validation, callbacks=callbacks, verbose=2,
                    shuffle=False)  # training_batches shuffles, seeded per epoch


def _train_metrics(run: RunSettings, ready: Prepared, epochs: list, guard, timer) -> dict:
    """train.json: what was trained, how it ended, how fast, and where."""
    losses = [epoch.get("loss") for epoch in epochs]
    if guard.reason is None and not all(_finite(v) for v in losses):
        guard.reason = "non-finite training loss"
    diverged = guard.reason is not None
    if diverged:
        print(f"diverged: {guard.reason}; recorded as a diverged run (never averaged into a report)", flush=True)
    last = epochs[-1] if epochs else {}
    description = anatomy.describe(ready.net)
    metrics = {
        "model": description["model"], "backend": keras.backend.backend(),
        "trainable_params": description["trainable_params"], "flops": description["flops"],
        "diverged": diverged, "divergence": guard.reason,
        # Whether two arms' runs of one seed may be compared pair by pair (report.effects).
        "initial_weights": ready.initial_weights, "data_order": data_order_key(run, ready.fingerprint),
        "epochs": run.train.epochs, "epochs_run_here": timer.epochs,
        "train_loss": last.get("loss"), "train_accuracy": last.get("accuracy"),
        "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
        "train_seconds": round(timer.seconds, 2), "validation_seconds": round(timer.validation_seconds, 2),
        # Training images/s: the fit loop and input pipeline included, validation passes not.
        "images_per_second": round(timer.epochs * len(ready.rows) / (timer.seconds - timer.validation_seconds), 1)
        if timer.seconds > timer.validation_seconds else None,
    }
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    metrics["mixed_precision"] = ready.policy  # what ran (train.mixed_precision may say auto)
    metrics["machine"] = ready.machine  # what a rerun is checked against
    if "builder" in ready.fingerprint:  # a user's network: what it ran with, defaults included
        metrics["builder"] = ready.fingerprint["builder"]
    return metrics


def train(run: RunSettings, seed: int, fetched_dir, split_dir, out_dir, checkpoints_dir) -> dict:
    """Trains and writes the model, dvclive's logs and the train metrics of
    layout.RunFiles(out_dir), each renamed into place only once complete;
    returns the train metrics. Resumes from the checkpoint in checkpoints_dir
    that has this run's key, never from another arm's."""
    ready = prepare(run, seed, fetched_dir, split_dir, checkpoints_dir)
    ready = ready._replace(initial_weights=initial_weights_key(ready.net))
    first_epoch, log = _resume(ready)
    timer, guard = EpochTimer(), DivergenceGuard(log.get("starting_loss"))
    epochs = list(log.get("epochs", []))
    if first_epoch < run.train.epochs:
        _fit(run, seed, ready, first_epoch, epochs, guard, timer)
    else:  # every epoch had finished, but writing the outputs had failed
        print("training had finished; writing its outputs from the checkpoint", flush=True)
    metrics = _train_metrics(run, ready, epochs, guard, timer)
    # Every output complete before any replaces its previous version; the
    # checkpoint goes last, so a failed write (a full disk) can be rerun.
    files_out = RunFiles(Path(out_dir))
    with atomic_files.atomic_path(files_out.model) as partial_model:
        ready.model.save(partial_model)
    atomic_files.replace_dir(ready.state.live, files_out.live)
    atomic_files.write_json(files_out.train_metrics, metrics)
    shutil.rmtree(ready.state.dir, ignore_errors=True)
    return metrics
