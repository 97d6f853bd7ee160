"""The paper's CIFAR-10 recipe and ImageNet-size train steps on any Keras backend,
with no TensorFlow: the GPU machine this project can borrow has JAX but cannot
install TensorFlow.

    KERAS_BACKEND=jax python -m benchmarks.gpu_recipe --epochs 20

Reads the CIFAR-10 image-folder archive with ablation.ingest and Pillow into
arrays, then trains each CIFAR arm (ResNet-20/56 and their plain twins by
default) with the paper's recipe -- SGD, lr 0.1, momentum 0.9, L2 1e-4, batch
128, lr / 10 at 50% and 75% of training, pad-4 crop and flip -- compressed into
--epochs, and reports images/s, seconds per epoch, test accuracy and the
projected wall time of the paper's 64k iterations. Then it times the train step
of our ResNet-34/50 at 224x224 against keras.applications.ResNet50. Figures go
to OUT/gpu_recipe.json and OUT/gpu_recipe.md; `python -m benchmarks.report`
puts the Markdown into reports/benchmarks.md.

The input pipeline is NumPy here, not tf.data (which needs TensorFlow): each
epoch is augmented on the host before it is fed, and that time is counted in
the images/s.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tabulate import tabulate

from ablation.core.layout import GPU_REPORTS
from ablation.core.machine import describe as describe_machine
from ablation.core.sections import ModelParams, TrainParams
from ablation.core.yaml_text import parse_yaml
from ablation.data.ingest import ImageFolder
from ablation.nets import models
from ablation.training.recipe import make_optimizer, pixel_moments, with_normalization

ROOT = Path(__file__).resolve().parents[1]
PAPER_ITERATIONS = 64_000  # the paper's CIFAR-10 schedule: 64k iterations of batch 128
PAPER_WEIGHT_DECAY = 0.0001  # the paper's section 4.2
PAPER_BATCH = 128
PAPER_TRAIN = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "schedule": "step",
               "step_boundaries": [0.5, 0.75], "warmup_epochs": 0}
CIFAR_ARMS = {"resnet20": (20, True), "plain20": (20, False), "resnet56": (56, True), "plain56": (56, False)}
IMAGENET_ARMS = {"resnet34": 34, "resnet50": 50}
PAD = 4


def load_cifar(archive: Path, limit: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (uint8 images NxHxWx3, int labels)} from an image-folder archive;
    `limit` keeps the first limit/classes images of each class in each split."""
    folder = ImageFolder("cifar10", archive)
    per_class = None if limit is None else max(1, limit // len(folder.classes))
    images, labels, kept = {}, {}, {}
    for image in folder:
        key = (image.split, image.label)
        if per_class is not None and kept.get(key, 0) >= per_class:
            continue
        kept[key] = kept.get(key, 0) + 1
        with Image.open(io.BytesIO(image.data)) as decoded:
            images.setdefault(image.split, []).append(np.asarray(decoded.convert("RGB")))
        labels.setdefault(image.split, []).append(image.label)
    return {split: (np.stack(images[split]), np.array(labels[split], dtype=np.int32)) for split in images}


def augment_epoch(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's augmentation on a whole epoch: zero-pad 4 pixels, a random crop
    back to the original size, a random horizontal flip."""
    count, height, width, _ = images.shape
    padded = np.pad(images, [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)])
    rows = rng.integers(0, 2 * PAD + 1, count)[:, None] + np.arange(height)
    cols = rng.integers(0, 2 * PAD + 1, count)[:, None] + np.arange(width)
    flip = rng.random(count) < 0.5
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(count)[:, None, None], rows[:, :, None], cols[:, None, :]]


def normalization_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """with_normalization's statistics of the training images, summed in chunks
    (a float64 copy of all 50,000 would take 1.2 GB)."""
    total, total_sq = np.zeros(images.shape[1:]), np.zeros(images.shape[-1])
    for chunk in np.array_split(images, max(1, len(images) // 5000)):
        as_float = chunk.astype(np.float64)
        total += as_float.sum(axis=0)
        total_sq += np.square(as_float).sum(axis=(0, 1, 2))
    return pixel_moments(total, total_sq, len(images))


def shipped(section: str) -> dict:
    """A section of the shipped params.yaml as written. Not load_params: it checks
    every choice against its table, and the data and training tables live in modules
    that need TensorFlow, which a JAX-only machine lacks."""
    return parse_yaml((ROOT / "params.yaml").read_text())[section]


def model_params(**changes) -> ModelParams:
    return ModelParams.parse({**shipped("model"), **changes})  # validated: the model section needs no TensorFlow


def cifar_model(depth: int, residual: bool, input_shape: tuple, moments: tuple) -> keras.Model:
    arm = model_params(arch="resnet_cifar", depth=depth, residual=residual, shortcut="A",
                       weight_decay=PAPER_WEIGHT_DECAY)
    return with_normalization(models.build_model(arm, input_shape, 10), *moments)


def train_cifar_arm(name: str, data: dict, moments: tuple, epochs: int, precision: str, steps_per_execution: int,
                    seed: int = 0) -> dict:
    depth, residual = CIFAR_ARMS[name]
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_dtype_policy(precision)
    (train_x, train_y), (test_x, test_y) = data["train"], data["test"]
    steps_per_epoch = math.ceil(len(train_x) / PAPER_BATCH)
    model = cifar_model(depth, residual, train_x.shape[1:], moments)
    recipe = TrainParams(**{**shipped("train"), **PAPER_TRAIN, "epochs": epochs})
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch, PAPER_WEIGHT_DECAY),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=steps_per_execution)
    rng, epoch_seconds, losses = np.random.default_rng(seed), [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        history = model.fit(augment_epoch(train_x, rng), train_y, batch_size=PAPER_BATCH, epochs=epoch + 1,
                            initial_epoch=epoch, shuffle=True, verbose=0)
        epoch_seconds.append(time.perf_counter() - start)
        losses.append(float(history.history["loss"][-1]))
        print(f"  {name} {precision} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}, "
              f"{epoch_seconds[-1]:.1f} s", flush=True)
    test_loss, test_accuracy = model.evaluate(test_x, test_y, batch_size=1000, verbose=0)
    # The first epoch includes compiling; the rest run at the steady rate.
    steady = epoch_seconds[1:] or epoch_seconds
    images_per_second = len(train_x) * len(steady) / sum(steady)
    keras.mixed_precision.set_dtype_policy("float32")
    return {"arm": name, "precision": precision, "epochs": epochs, "train_images": len(train_x),
            "test_images": len(test_x), "steps_per_execution": steps_per_execution,
            "images_per_second": round(images_per_second, 1), "first_epoch_seconds": round(epoch_seconds[0], 2),
            "seconds_per_epoch": round(sum(steady) / len(steady), 2), "final_train_loss": losses[-1],
            "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
            "paper_recipe_projected_minutes": round(PAPER_ITERATIONS * PAPER_BATCH / images_per_second / 60, 2)}


def train_step_rate(model: keras.Model, size: int, batch: int, steps: int) -> float:
    """Images/s of train_on_batch on random data, after two warm-up steps (compiling)."""
    rng = np.random.default_rng(0)
    images = rng.random((batch, size, size, 3), dtype=np.float32)
    labels = rng.integers(0, 1000, batch)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    for _ in range(2):
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)  # returns the loss to the host, so each step has finished
    return batch * steps / (time.perf_counter() - start)


def imagenet_step(name: str, size: int, batch: int, steps: int, precision: str, reference_rate: float) -> dict:
    keras.mixed_precision.set_dtype_policy(precision)
    arm = model_params(arch="resnet", depth=IMAGENET_ARMS[name], shortcut="B", residual=True,
                       stem="imagenet")  # keras' stem at any side
    rate = train_step_rate(models.build_model(arm, (size, size, 3), 1000), size, batch, steps)
    keras.mixed_precision.set_dtype_policy("float32")
    return {"arm": name, "precision": precision, "side": size, "batch": batch, "steps": steps,
            "images_per_second": round(rate, 1), "keras_resnet50_images_per_second": round(reference_rate, 1),
            "ratio_to_keras_resnet50": round(rate / reference_rate, 3)}


def keras_resnet50_rate(size: int, batch: int, steps: int, precision: str) -> float:
    keras.mixed_precision.set_dtype_policy(precision)
    model = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3), classes=1000)
    rate = train_step_rate(model, size, batch, steps)
    keras.mixed_precision.set_dtype_policy("float32")
    return rate


def machine() -> dict:
    """What a run records of its machine (ablation.core.machine), and the devices Keras distributes over."""
    return {**describe_machine(keras.backend.backend(), 0), "devices": keras.distribution.list_devices()}


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["## GPU recipe: the paper's CIFAR-10 recipe and ImageNet-size train steps, no TensorFlow", "",
             f"Measured {results['date']} on {(m['gpus'] or m['devices'])[0]} ({len(m['devices'])} device(s)), "
             f"Keras {m['versions']['keras']} on the {m['backend']} backend"
             + (f" (JAX {m['versions']['jax']})" if "jax" in m["versions"] else "")
             + f". Command: `{results['command']}`", "",
             "CIFAR-10 from the JPEG image-folder archive: SGD lr 0.1 (momentum 0.9, L2 1e-4, batch 128), lr / 10 at "
             "50% and 75% of the epochs, pad-4 crop and flip augmented in NumPy on the host (counted in images/s). "
             "images/s and s/epoch leave out the first epoch (compiling); `64k iterations` projects the paper's "
             "schedule (64,000 steps of 128) at that rate.", "",
             tabulate([[r["arm"], r["precision"], r["epochs"], f"{r['train_images']:,}", r["images_per_second"],
                        r["seconds_per_epoch"], r["first_epoch_seconds"], f"{r['test_accuracy']:.4f}",
                        r["paper_recipe_projected_minutes"]] for r in results["cifar"]],
                      headers=["arm", "precision", "epochs", "train images", "images/s", "s/epoch",
                               "first epoch s", "test accuracy", "64k iterations, min"], tablefmt="github"), ""]
    if results["imagenet"]:
        lines += ["Train step on random 224x224 images (or the side shown), `train_on_batch` after two warm-up "
                  "steps, against `keras.applications.ResNet50(weights=None)` on the same backend, batch and "
                  "precision.", "",
                  tabulate([[r["arm"], r["precision"], r["side"], r["batch"], r["images_per_second"],
                             r["keras_resnet50_images_per_second"], r["ratio_to_keras_resnet50"]]
                            for r in results["imagenet"]],
                           headers=["arm", "precision", "side", "batch", "images/s", "keras ResNet50 images/s",
                                    "ratio"], tablefmt="github"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=ROOT.parent / "shared/datasets/cifar10-jpeg.tar.gz")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--arms", nargs="+", default=list(CIFAR_ARMS), choices=list(CIFAR_ARMS))
    parser.add_argument("--precision", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--limit", type=int, help="images per split (a quick check); default: all")
    parser.add_argument("--imagenet-arms", nargs="*", default=list(IMAGENET_ARMS), choices=list(IMAGENET_ARMS))
    parser.add_argument("--imagenet-side", type=int, default=224)
    parser.add_argument("--imagenet-batch", type=int, default=128)
    parser.add_argument("--imagenet-steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / GPU_REPORTS)
    args = parser.parse_args(argv)
    if not args.archive.exists():
        raise SystemExit(f"error: {args.archive} not found. Fix: pass --archive with the CIFAR-10 image-folder "
                         "archive (../shared/datasets/cifar10-jpeg.tar.gz in this project's layout).")
    if args.epochs < 1:
        raise SystemExit("error: --epochs must be at least 1.")
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
               "command": " ".join(["python -m benchmarks.gpu_recipe", *(argv if argv is not None else sys.argv[1:])]),
               "cifar": [], "imagenet": []}
    print(f"backend {results['machine']['backend']}, devices {results['machine']['devices']}", flush=True)
    start = time.perf_counter()
    data = load_cifar(args.archive, args.limit)
    print(f"read {len(data['train'][0]):,} training and {len(data['test'][0]):,} test images in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    moments = normalization_moments(data["train"][0])  # once: every arm sees the same training images
    args.out.mkdir(parents=True, exist_ok=True)

    def save():  # after every arm, so an interrupted run keeps what it measured
        (args.out / "gpu_recipe.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "gpu_recipe.md").write_text(markdown(results))

    for precision in args.precision:
        for arm in args.arms:
            results["cifar"].append(train_cifar_arm(arm, data, moments, args.epochs, precision,
                                                    args.steps_per_execution))
            print(json.dumps(results["cifar"][-1]), flush=True)
            save()
        if args.imagenet_arms:
            reference = keras_resnet50_rate(args.imagenet_side, args.imagenet_batch, args.imagenet_steps, precision)
            for arm in args.imagenet_arms:
                results["imagenet"].append(imagenet_step(arm, args.imagenet_side, args.imagenet_batch,
                                                         args.imagenet_steps, precision, reference))
                print(json.dumps(results["imagenet"][-1]), flush=True)
                save()
    save()
    print(f"wrote {args.out / 'gpu_recipe.json'} and {args.out / 'gpu_recipe.md'}")
    return results


if __name__ == "__main__":
    main()
