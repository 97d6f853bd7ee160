"""Evaluating a trained arm on the test split: loss, accuracy, per-class accuracy,
confusion matrix and per-example predictions (for paired comparisons of arms)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np

from ablation import data, models  # models also registers the custom layers for loading
from ablation.figures import plot_confusion

BATCH_SIZE = 256
RESPONSE_IMAGES = 2000  # test images for the layer-response std (plenty for a std; a fraction of predict's cost)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def layer_responses(model: keras.Model, batches) -> dict:
    """Std of each 3x3 layer's response (models.response_layers) over the images,
    positions and channels of `batches`: the paper's Fig. 7. `model` is the saved
    arm, the normalization layers in front of the network."""
    net = model.layers[-1]
    bns = models.response_layers(net)
    responses = keras.Model(net.inputs, [bn.output for bn in bns])
    normalize = lambda images: model.get_layer("normalize")(model.get_layer("to_float")(images))  # noqa: E731
    sums, squares, count = np.zeros(len(bns)), np.zeros(len(bns)), np.zeros(len(bns))
    for images, _ in batches:
        for index, output in enumerate(responses(normalize(images), training=False)):
            values = keras.ops.convert_to_numpy(keras.ops.cast(output, "float32")).astype(np.float64)
            sums[index] += values.sum()
            squares[index] += np.square(values).sum()
            count[index] += values.size
    means = sums / count
    return {"layers": [bn.name for bn in bns],
            "std": [float(v) for v in np.sqrt(np.maximum(squares / count - np.square(means), 0.0))]}


def evaluate(model_path, fetched_dir, split_dir, image_size: int, out_dir) -> dict:
    """Writes metrics.json, predictions.csv, layer_responses.json and confusion.png into out_dir."""
    if not Path(model_path).exists():
        raise data.DataError(f"{model_path} is missing. Fix: train first (`dvc repro train`, or "
                             f"`python -m stages.train DATASET SEED`).")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = data.read_info(fetched_dir)["classes"]
    cached, rows = data.load_split(fetched_dir, split_dir, "test", image_size)
    if not rows:
        raise data.DataError(f"the test split in {split_dir} is empty. Fix: raise split.test_fraction or data.limit.")
    model = keras.saving.load_model(model_path, compile=False)  # predicting needs no optimizer
    # One pass fills the cache and gives ids and labels in the order predict() sees them.
    ids, labels = zip(*((i.decode(), label) for i, _, label in cached.as_numpy_iterator()))
    labels = np.array(labels, dtype=np.int64)
    probabilities = model.predict(data.evaluation_batches(cached, len(rows), BATCH_SIZE), verbose=2)
    finite = np.isfinite(probabilities).all(axis=1)
    probabilities = np.where(finite[:, None], probabilities, 1.0 / len(classes))
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    matrix = confusion_matrix(labels, predicted, len(classes))
    per_class = {c: float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None
                 for i, c in enumerate(classes)}
    accuracy = float((predicted == labels).mean())
    metrics = {
        "test_examples": int(len(labels)),
        "loss": float(-np.log(picked).mean()),
        "accuracy": accuracy,
        "top1_error": 1.0 - accuracy,
        "non_finite_predictions": int((~finite).sum()),
        "per_class_accuracy": per_class,
    }
    with open(out_dir / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "label", "predicted", "confidence"])
        writer.writerows((i, classes[l], classes[p], f"{c:.6f}")
                         for i, l, p, c in zip(ids, labels, predicted, confidence))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    sample = min(RESPONSE_IMAGES, len(rows))
    responses = layer_responses(model, data.evaluation_batches(cached.take(sample), sample, BATCH_SIZE))
    (out_dir / "layer_responses.json").write_text(json.dumps(responses, indent=2) + "\n")
    plot_confusion(matrix, classes, out_dir / "confusion.png", title=f"{model.name}: test accuracy {accuracy:.3f}")
    return metrics
