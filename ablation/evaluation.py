"""Evaluating a trained arm on the test split: loss, accuracy, per-class accuracy,
confusion matrix and per-example predictions (for paired comparisons of arms)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np

from ablation import data, models  # noqa: F401  (models registers the custom layers for loading)
from ablation import training  # noqa: F401  (registers StudySchedule)
from ablation.reporting import plot_confusion

BATCH_SIZE = 256


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def evaluate(model_path, fetched_dir, split_dir, image_size: int, out_dir) -> dict:
    """Writes metrics.json, predictions.csv and confusion.png into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = data.read_info(fetched_dir)["classes"]
    cached, rows = data.load_split(fetched_dir, split_dir, "test", image_size)
    if not rows:
        raise data.DataError(f"the test split in {split_dir} is empty. Fix: raise split.test_fraction or data.limit.")
    model = keras.saving.load_model(model_path)
    # One pass fills the cache and gives ids and labels in the order predict() sees them.
    ids, labels = zip(*((i.decode(), label) for i, _, label in cached.as_numpy_iterator()))
    labels = np.array(labels, dtype=np.int64)
    probabilities = model.predict(data.evaluation_batches(cached, BATCH_SIZE), verbose=2)
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
    plot_confusion(matrix, classes, out_dir / "confusion.png", title=f"{model.name}: test accuracy {accuracy:.3f}")
    return metrics
