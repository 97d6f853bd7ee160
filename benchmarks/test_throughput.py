"""Throughput benchmarks (pytest-benchmark). Goals are reported, not asserted:

- our ResNet-50 train step at least as fast as keras.applications.ResNet50 (ratio >= 1);
- the input pipeline at least 3x the train-step rate of the arm it feeds;
- training arithmetic at least half of the measured matmul peak for the larger arms.

Run: python -m pytest benchmarks --benchmark-enable --benchmark-json=reports/benchmarks.json
     python -m benchmarks.report reports/benchmarks.json   # -> reports/benchmarks.md
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from ablation.core.declarations import defaults
from ablation.core.sections import ModelParams, SplitParams
from ablation.data import fetch, splitting
from ablation.nets.anatomy import describe
from ablation.nets.models import build_model
from ablation.training import inputs

BATCH = 32
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
BASE = {**defaults("model"), "residual": True, "shortcut": "B", "stem": "auto", "fc_init": "linear_default",
        "weight_decay": 1e-4, "dense_units": 512, "dropout": 0.5}
# (name, model params, image side) of every arm measured.
ARMS = [
    ("resnet_cifar20", {"arch": "resnet_cifar", "depth": 20, "shortcut": "A"}, 32),
    ("plain_cifar20", {"arch": "resnet_cifar", "depth": 20, "shortcut": "A", "residual": False}, 32),
    ("resnet_cifar56", {"arch": "resnet_cifar", "depth": 56, "shortcut": "A"}, 32),
    ("plain_cifar56", {"arch": "resnet_cifar", "depth": 56, "shortcut": "A", "residual": False}, 32),
    ("resnet34@32", {"arch": "resnet", "depth": 34}, 32),
    ("resnet50@32", {"arch": "resnet", "depth": 50}, 32),
    ("resnet34@128", {"arch": "resnet", "depth": 34}, 128),
    ("resnet50@128", {"arch": "resnet", "depth": 50}, 128),
    # keras' ResNet50 has no weight decay: this row compares like with like.
    ("resnet50@128 no L2", {"arch": "resnet", "depth": 50, "weight_decay": 0.0}, 128),
    ("vgg16@32", {"arch": "vgg", "depth": 16, "residual": False}, 32),
]
TRAIN_RATES = {}  # arm name -> images/s, for the input-pipeline ratios


def timed_rounds(benchmark, step, rounds=3):
    """Runs step once to warm up (graph tracing), then `rounds` times under
    pytest-benchmark; returns the median seconds we timed ourselves (so the figure
    exists under --benchmark-disable too)."""
    seconds = []

    def timed():
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)

    step()
    benchmark.pedantic(timed, rounds=rounds, iterations=1)
    return statistics.median(seconds)


def train_step(model: keras.Model, side: int):
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(BATCH, side, side, 3)).astype("float32"))
    labels = tf.constant(rng.integers(0, 10, BATCH))
    return lambda: model.train_on_batch(images, labels)


@pytest.fixture(scope="session")
def matmul_gflops():
    """The machine's practical fp32 peak: a large matmul's GFLOP/s."""
    n = 2048
    a = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.matmul(a, a))
    matmul().numpy()
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        matmul().numpy()
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


REFERENCE_RATES = {}


def keras_resnet50_rate(side: int) -> float:
    """images/s of keras.applications.ResNet50 (weights=None) on the same input and batch."""
    if side not in REFERENCE_RATES:
        model = keras.applications.ResNet50(weights=None, input_shape=(side, side, 3), classes=10)
        step = train_step(model, side)
        step()
        start = time.perf_counter()
        for _ in range(3):
            step()
        REFERENCE_RATES[side] = 3 * BATCH / (time.perf_counter() - start)
    return REFERENCE_RATES[side]


@pytest.mark.parametrize("name, model, side", ARMS, ids=[a[0] for a in ARMS])
def test_train_step(benchmark, matmul_gflops, name, model, side):
    keras.utils.set_random_seed(0)
    net = build_model(ModelParams(**{**BASE, **model}), (side, side, 3), 10)
    seconds = timed_rounds(benchmark, train_step(net, side))
    rate = BATCH / seconds
    TRAIN_RATES[name] = rate
    # A train step costs about 3x the forward pass (forward, and backward for inputs and weights).
    gflops = 3 * describe(net)["flops"] * rate / 1e9
    reference = keras_resnet50_rate(side)
    benchmark.extra_info.update({
        "kind": "train_step", "arm": name, "batch": BATCH, "images_per_second": round(rate, 1),
        "keras_resnet50_images_per_second": round(reference, 1), "ratio_to_keras_resnet50": round(rate / reference, 2),
        "achieved_gflops": round(gflops, 1), "matmul_peak_gflops": round(matmul_gflops, 1),
        "fraction_of_peak": round(gflops / matmul_gflops, 2)})
    print(f"{name}: {rate:.1f} images/s, {rate / reference:.2f}x keras ResNet50, {gflops:.0f} GFLOP/s "
          f"({gflops / matmul_gflops:.0%} of a {matmul_gflops:.0f} GFLOP/s matmul)")
    assert rate > 0


# (dataset, archive, image side, augmentation, arm whose train step it feeds)
PIPELINES = [
    ("cifar10", "cifar10-jpeg.tar.gz", 32, "pad_crop_flip", "resnet_cifar20"),
    ("cats_vs_dogs", "cats_vs_dogs-sample.tar.gz", 128, "resized_crop_flip", "resnet34@128"),
]


@pytest.mark.parametrize("dataset, archive, side, policy, fed_arm", PIPELINES, ids=[p[0] for p in PIPELINES])
def test_input_pipeline(benchmark, tmp_path_factory, dataset, archive, side, policy, fed_arm):
    """Decode + resize + augment + batch from the real archives, with a cold cache
    each round (the first epoch's cost; later epochs read decoded images from memory)."""
    if not (SHARED / archive).exists():
        pytest.skip(f"needs {SHARED / archive}")
    work = tmp_path_factory.mktemp(dataset)
    fetch.fetch(dataset, "folder", str(SHARED / archive), work / "fetched")
    splitting.split(work / "fetched", SplitParams(test_fraction=0.2, val_fraction=0.0, seed=0), 4000, work / "split")

    def one_epoch(cached, count):
        for _ in inputs.training_batches(cached, count, 128, policy, 0, 0, 1):
            pass

    def cold_epoch():
        cached, rows = inputs.load_split(work / "fetched", work / "split", "train", side)
        one_epoch(cached, len(rows))

    cached, rows = inputs.load_split(work / "fetched", work / "split", "train", side)
    one_epoch(cached, len(rows))  # fills the cache
    start = time.perf_counter()
    one_epoch(cached, len(rows))
    warm_rate = len(rows) / (time.perf_counter() - start)
    rate = len(rows) / timed_rounds(benchmark, cold_epoch, rounds=2)
    train_rate = TRAIN_RATES.get(fed_arm)
    benchmark.extra_info.update({
        "kind": "input_pipeline", "dataset": dataset, "side": side, "images": len(rows),
        "images_per_second": round(rate, 1), "cached_images_per_second": round(warm_rate, 1), "fed_arm": fed_arm,
        "train_step_images_per_second": round(train_rate, 1) if train_rate else None,
        "ratio_to_train_step": round(rate / train_rate, 1) if train_rate else None,
        "cached_ratio_to_train_step": round(warm_rate / train_rate, 1) if train_rate else None})
    print(f"{dataset} pipeline: first epoch {rate:.0f} images/s, cached epochs {warm_rate:.0f} images/s"
          + (f" ({rate / train_rate:.1f}x / {warm_rate / train_rate:.1f}x {fed_arm})" if train_rate else ""))
    assert rate > 0 and warm_rate > 0


MEMORY_PROBE = """
import json, sys
import keras, numpy as np
from ablation.nets.models import build_model
from ablation.core.sections import ModelParams
model, side, batch = ModelParams(**json.loads(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
net = build_model(model, (side, side, 3), 10)
net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
x = np.random.default_rng(0).normal(size=(batch, side, side, 3)).astype("float32")
y = np.zeros(batch, "int64")
for _ in range(2):
    net.train_on_batch(x, y)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (pytest) across exec.
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024)
"""


@pytest.mark.parametrize("name", [a[0] for a in ARMS])
def test_peak_memory(benchmark, name):
    """Peak resident memory (MiB) of a fresh process that builds the arm and trains two steps."""
    _, model, side = next(a for a in ARMS if a[0] == name)
    peaks = []

    def probe():
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, json.dumps({**BASE, **model}), str(side), str(BATCH)],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        peaks.append(float(out.strip().splitlines()[-1]))

    benchmark.pedantic(probe, rounds=1, iterations=1)
    benchmark.extra_info.update({"kind": "peak_memory", "arm": name, "batch": BATCH, "peak_rss_mib": round(peaks[-1])})
    print(f"{name}: peak RSS {peaks[-1]:.0f} MiB")
    assert peaks[-1] > 100


STAGE_MEMORY_PROBE = """
import json, sys
import keras, numpy as np
import tensorflow as tf
from ablation.training import evaluate, inputs, recipe
from ablation.nets.models import build_model
from ablation.core.sections import ModelParams
model, stage = ModelParams(**json.loads(sys.argv[1])), sys.argv[2]
net = recipe.with_normalization(build_model(model, (32, 32, 3), 10), np.zeros((32, 32, 3), "float32"),
                                np.ones(3, "float32"))
rng = np.random.default_rng(0)
if stage == "train":  # the CPU study's batch
    net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    x = rng.integers(0, 256, size=(128, 32, 32, 3)).astype("uint8")
    for _ in range(2):
        net.train_on_batch(x, np.zeros(128, "int64"))
else:  # evaluate's passes: predict on 10,000 test images, then the layer responses
    images = rng.integers(0, 256, size=(10_000, 32, 32, 3)).astype("uint8")
    cached = tf.data.Dataset.from_tensor_slices((np.arange(10_000).astype(str), images, np.zeros(10_000, "int64")))
    net.predict(inputs.evaluation_batches(cached, 10_000, evaluate.BATCH_SIZE), verbose=0)
    sample = evaluate.RESPONSE_IMAGES
    evaluate.layer_responses(net, inputs.evaluation_batches(cached.take(sample), sample, evaluate.RESPONSE_BATCH))
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024)
"""


@pytest.mark.parametrize("name", ["resnet_cifar20", "resnet_cifar56"])
def test_evaluate_peak_memory_against_training(benchmark, name):
    """Peak resident memory (MiB) of the evaluate stage's passes on 10,000 CIFAR-sized
    images against two training steps at the CPU study's batch of 128, each in a
    fresh process: evaluate should stay under training."""
    _, model, _ = next(a for a in ARMS if a[0] == name)
    peaks = {}

    def probe():
        for stage in ("train", "evaluate"):
            out = subprocess.run([sys.executable, "-c", STAGE_MEMORY_PROBE, json.dumps({**BASE, **model}), stage],
                                 cwd=ROOT, capture_output=True, text=True, check=True).stdout
            peaks[stage] = float(out.strip().splitlines()[-1])

    benchmark.pedantic(probe, rounds=1, iterations=1)
    benchmark.extra_info.update({"kind": "stage_memory", "arm": name, "train_peak_rss_mib": round(peaks["train"]),
                                 "evaluate_peak_rss_mib": round(peaks["evaluate"])})
    print(f"{name}: evaluate peak {peaks['evaluate']:.0f} MiB, training peak {peaks['train']:.0f} MiB")
    assert peaks["evaluate"] > 100 and peaks["train"] > 100


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("batch", [32, 128])
def test_options_resnet_cifar20(benchmark, policy, batch):
    """Mixed precision and batch size on the study's CIFAR workhorse. (XLA is left
    out: on this CPU it made training 2-4x slower.)"""
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        cifar20 = ModelParams(**{**BASE, "arch": "resnet_cifar", "depth": 20, "shortcut": "A"})
        net = build_model(cifar20, (32, 32, 3), 10)
        net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
        images = tf.constant(np.random.default_rng(0).normal(size=(batch, 32, 32, 3)).astype("float32"))
        labels = tf.constant(np.zeros(batch, "int64"))
        seconds = timed_rounds(benchmark, lambda: net.train_on_batch(images, labels))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    rate = batch / seconds
    benchmark.extra_info.update({"kind": "option", "arm": "resnet_cifar20", "policy": policy, "batch": batch,
                                 "images_per_second": round(rate, 1)})
    print(f"resnet_cifar20 {policy} batch {batch}: {rate:.0f} images/s")
    assert rate > 0


BACKEND_STEP = """
import json, sys, time, numpy as np, keras
from ablation.nets.models import build_model
from ablation.core.sections import ModelParams
policy, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keras.mixed_precision.set_dtype_policy(policy)
keras.utils.set_random_seed(0)
net = build_model(ModelParams(**json.loads(sys.argv[4])), (32, 32, 3), 10)
net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
images = np.random.default_rng(0).normal(size=(batch, 32, 32, 3)).astype("float32")
labels = np.zeros(batch, "int64")
seconds = []
for step in range(2 + steps):  # two warm-up steps compile
    start = time.perf_counter()
    net.train_on_batch(images, labels)  # returns the loss to the host: the step has finished
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds_per_step": float(np.median(seconds[2:]))}))
"""


BACKEND_ARMS = {"resnet_cifar20": {"arch": "resnet_cifar", "depth": 20, "shortcut": "A"},
                "resnet_cifar56": {"arch": "resnet_cifar", "depth": 56, "shortcut": "A"},
                "resnet50": {"arch": "resnet", "depth": 50}}


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("arm", list(BACKEND_ARMS))
def test_backend_train_step(benchmark, arm, backend, policy):
    """The same train step (batch 128, 32x32 images) under each Keras backend, each in
    its own process (the backend is fixed at import). TensorFlow runs without XLA
    (faster on CPUs measured here); JAX always compiles with XLA; torch runs eagerly
    with OMP_WAIT_POLICY=PASSIVE, as the stages set it. `study --backend auto` picks
    by the same kind of measurement."""
    if backend == "torch":
        pytest.importorskip("torch")
    batch, steps, rates = 128, 5, []

    def measure():
        result = subprocess.run([sys.executable, "-c", BACKEND_STEP, policy, str(batch), str(steps),
                                 json.dumps({**BASE, **BACKEND_ARMS[arm]})], cwd=ROOT, capture_output=True, text=True,
                                env={**os.environ, "KERAS_BACKEND": backend, "OMP_WAIT_POLICY": "PASSIVE"})
        assert result.returncode == 0, result.stderr[-2000:]
        rates.append(batch / json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_step"])

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update({"kind": "backend", "arm": arm, "backend": backend, "policy": policy,
                                 "batch": batch, "images_per_second": round(rates[-1], 1)})
    print(f"{arm} on {backend} ({policy}, batch {batch}): {rates[-1]:.0f} images/s")
    assert rates[-1] > 0
