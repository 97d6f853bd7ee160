"""`ablate study --dry-run`: every arm validated and its network built
for every dataset, one line per experiment (its name, its grid values, an
estimated wall time on this machine) and nothing queued.

An experiment's estimate is its training time plus its stages' overhead
(overhead.py: measured on this machine). The training time is FLOPs over a
measured rate: an arm's training FLOPs (3x the
forward FLOPs per image, for the backward pass, x images x epochs x seeds) over
the training FLOP/s this machine reaches on a short probe of resnet_cifar20 in
the study's precision and threads. A bigger net uses a CPU or GPU better than
the probe, so the estimate errs long for it; it is a plan, not a promise."""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path

import numpy as np

from ablation.core import layout, machine, precision, reading
from ablation.core.params import RunSettings
from ablation.data import ingest
from ablation.data.datasets import DATASETS
from ablation.nets import anatomy, models
from ablation.study import overhead

PROBE_BATCH, PROBE_STEPS, PROBE_SECONDS = 32, 6, 5.0  # timed steps: up to 6, or as many as fit in 5 s


@functools.lru_cache(maxsize=None)
def _listed(dataset: str, folder: Path) -> dict:
    """Images per split of a folder or archive, listed once per dry run: every arm of
    a study reads the same data, and listing CIFAR-10's archive takes seconds."""
    return ingest.ImageFolder(dataset, folder).listed


def train_images(run: RunSettings) -> int | None:
    """Images one epoch trains on: the fetched counts where the data was fetched here,
    else the image files in the folder or archive of data.paths, or
    the datasets table's tfds size, with the arm's split fractions and data.limit applied as the
    split stage applies them (the limit caps each split after the fractions). Not
    the workspace's split counts: they are of the workspace's params, not the arm's."""
    info = layout.fetched_dir(run.dataset) / layout.INFO_FILE
    folder = Path(os.environ.get("DVC_ROOT", ".")) / run.path if run.source == "folder" and run.path else None
    if info.exists():
        splits = reading.read_json(info, "record", "fetch it again (`dvc repro -f fetch`).")["splits"]
    elif folder is not None and folder.exists():
        splits = _listed(run.dataset, folder.resolve())
    elif run.source == "tfds" and run.dataset in DATASETS:
        known = DATASETS[run.dataset]
        splits = {"train": known.train_images, **({"test": 0} if "test" in known.splits else {})}
    else:
        return None
    kept = (1 - run.split.val_fraction) * (1 if "test" in splits else 1 - run.split.test_fraction)
    train = round(splits.get("train", 0) * kept)
    return min(train, run.limit) if run.limit else train


def measured_rate(run: RunSettings) -> float:
    """Training FLOP/s of this machine on resnet_cifar20 (32x32, batch 32) in the
    run's precision and threads: a few steps after a warm-up step (fewer where
    they are slow: float16 on a CPU is emulated)."""
    import keras  # here: a dry run that fails on its params needs no backend

    from ablation.training.fit import jit_compile, set_threads
    set_threads(run.train.threads)
    keras.mixed_precision.set_dtype_policy(
        precision.resolve(run.train.mixed_precision, machine.describe(keras.backend.backend(), run.train.threads)))
    probe = dataclasses.replace(run.model, arch="resnet_cifar", depth=20, residual=True)
    net = models.build_model(probe, (32, 32, 3), 10)
    net.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=jit_compile(run.train.jit_compile))
    rng = np.random.default_rng(0)
    images = rng.random((PROBE_BATCH, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, PROBE_BATCH)
    net.train_on_batch(images, labels)  # builds and compiles the step
    start, steps = time.perf_counter(), 0
    while steps < PROBE_STEPS and (steps == 0 or time.perf_counter() - start < PROBE_SECONDS):
        net.train_on_batch(images, labels)
        steps += 1
    seconds = time.perf_counter() - start
    keras.mixed_precision.set_dtype_policy("float32")
    return 3 * anatomy.forward_flops(net) * PROBE_BATCH * steps / seconds


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(seconds / 60, 0.1):.1f} min"


def arm_seconds(arm, rate: float) -> tuple[float | None, list[str]]:
    """(estimated training seconds of all the arm's seeds, what it is made of)
    with every dataset's network built (which checks that it builds)."""
    total, parts = 0.0, []
    for dataset in arm.params.datasets:
        run = arm.params.for_dataset(dataset)
        # Two classes: the classifier is a rounding error of the FLOPs whatever the count.
        net = models.build_model(run.model, (run.image_size, run.image_size, 3), 2)
        flops, images = anatomy.forward_flops(net), train_images(run)
        if images is None:
            parts.append(f"{dataset}: {flops / 1e9:.3f} GFLOPs/image, size unknown until fetched")
            total = None
            continue
        seconds = 3 * flops * images * run.train.epochs * len(arm.params.train.seeds) / rate
        total = None if total is None else total + seconds
        parts.append(f"{dataset}: {len(arm.params.train.seeds)} seed(s) x {run.train.epochs} epochs x "
                     f"{images:,} images x {flops / 1e9:.3f} GFLOPs")
    return total, parts


def experiment_seconds(study_arms: list, engine, rate: float, per_stage: float,
                       built: dict | None = None) -> dict[str, float | None]:
    """{experiment name: estimated wall seconds} of every experiment `engine` makes
    of the arms: its training (the FLOPs model) plus its stage processes at
    `per_stage` seconds each (overhead.py). None where a dataset's size is unknown.
    `built`: {arm name: arm_seconds(arm, rate)} where already computed."""
    estimates = {}
    for arm in study_arms:
        seconds, _ = built[arm.name] if built else arm_seconds(arm, rate)
        for experiment in engine.experiments(arm):
            share = len(experiment.params.train.seeds) / len(arm.params.train.seeds)
            estimates[experiment.name] = None if seconds is None else \
                seconds * share + per_stage * overhead.stage_count(experiment.params)
    return estimates


def plan(study_arms: list, engine, jobs: int, rate: float | None = None,
         per_stage: tuple[float, str] | None = None) -> list[str]:
    """The dry run's lines: a warning for a precision this machine emulates, the
    precision the arms train in here, one line per experiment `engine` (an
    engines.base.Engine) makes of each arm, then the total. `rate`: the training FLOP/s to plan with (the
    runs' backend's, measured in a process of its own), else measured here;
    `per_stage`: (seconds, origin) of a stage process's overhead, else overhead.per_stage()."""
    import keras  # here: a dry run that fails on its params needs no backend
    first = study_arms[0].params.for_dataset(study_arms[0].params.datasets[0])
    here = machine.describe(keras.backend.backend(), first.train.threads)
    asked = dict.fromkeys(arm.params.for_dataset(d).train.mixed_precision for arm in study_arms
                          for d in arm.params.datasets)
    lines = [warning for policy in asked if (warning := precision.emulation_warning(policy, here))]
    lines.append("precision on this machine: " + ", ".join(
        f"{policy} -> {precision.resolve(policy, here)}" if policy == precision.AUTO else policy for policy in asked))
    rate = rate or measured_rate(first)
    stage_seconds, origin = per_stage or overhead.per_stage()
    built = {arm.name: arm_seconds(arm, rate) for arm in study_arms}
    estimates = experiment_seconds(study_arms, engine, rate, stage_seconds, built)
    for arm in study_arms:
        _, parts = built[arm.name]
        for experiment in engine.experiments(arm):
            estimate, stages = estimates[experiment.name], overhead.stage_count(experiment.params)
            when = "time unknown" if estimate is None else \
                f"~{_duration(estimate)} ({stages} stages ~{_duration(stages * stage_seconds)} of it)"
            lines.append(f"{experiment.name}  {' '.join(arm.overrides)}  {when}  ({'; '.join(parts)})")
    count = len(estimates)
    if None in estimates.values():
        lines.append(f"{count} experiment(s), nothing queued")
        return lines
    lines.append(f"{count} experiment(s), nothing queued; ~{_duration(sum(estimates.values()) / jobs)} in all with "
                 f"{jobs} {engine.workers}: training at the {rate / 1e9:.1f} GFLOP/s this machine trains "
                 f"resnet_cifar20 at ({os.environ.get('KERAS_BACKEND', 'tensorflow')}), plus {stage_seconds:.0f} s "
                 f"per stage process ({origin})")
    return lines
