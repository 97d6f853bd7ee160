"""Evaluating a trained arm on the test split: loss, accuracy, per-class accuracy,
confusion matrix and per-example predictions (for paired comparisons of arms)."""
from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np

from ablation.core import atomic_files, reading
from ablation.core.errors import DataError
from ablation.core.layout import RunFiles
from ablation.core.run_records import PREDICTION_COLUMNS
from ablation.core.statistics import confusion_matrix
from ablation.data import shards, splitting
from ablation.nets import (
    anatomy,
    models,  # noqa: F401 (it registers the custom layers a saved model holds)
)
from ablation.training import inputs

BATCH_SIZE = 256
RESPONSE_IMAGES = 2000  # test images for the layer-response std (plenty for a std; a fraction of predict's cost)
# The response pass runs the net eagerly, which holds every layer's output of a batch
# at once: at 256 images that doubled evaluate's peak memory (resnet_cifar20: +720 MiB).
RESPONSE_BATCH = 32


def layer_responses(model: keras.Model, batches) -> dict:
    """Std of each 3x3 layer's response (anatomy.response_layers) over the images,
    positions and channels of `batches`: the paper's Fig. 7. `model` is the saved
    arm, the normalization layers in front of the network."""
    net = model.layers[-1]
    bns = anatomy.response_layers(net)
    if not bns:  # a user's network that places no Response marker: nothing to measure
        return {"layers": [], "std": []}
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


class Evaluation(NamedTuple):
    metrics: dict
    confusion: np.ndarray  # rows: true class, columns: predicted class
    classes: list[str]
    model_name: str


def evaluate(run: RunFiles, fetched_dir, split_dir, image_size: int) -> Evaluation:
    """Writes the run's eval metrics, predictions and layer responses (layout.RunFiles),
    each renamed into place once all three are computed."""
    splitting.check_manifest(fetched_dir, split_dir)  # first: a leaking split makes any model's test moot
    if not run.model.exists():
        raise DataError(f"{run.model} is missing. Fix: train first (`dvc repro train`, or "
                             f"`ablate train DATASET SEED`).")
    classes = shards.read_info(fetched_dir)["classes"]
    cached, rows = inputs.load_split(fetched_dir, split_dir, "test", image_size)
    if not rows:
        raise DataError(f"the test split in {split_dir} is empty. Fix: raise split.test_fraction or data.limit.")
    try:
        model = keras.saving.load_model(run.model, compile=False)  # predicting needs no optimizer
    except Exception as error:  # Keras reports a damaged archive as ValueError, OSError, "File not found", ...
        raise DataError(f"{run.model} cannot be loaded ({type(error).__name__}): truncated or damaged. Fix: "
                               f"train again (`dvc repro -f train@DATASET-SEED`, or `ablate train DATASET "
                               f"SEED`).") from None
    # One pass fills the cache and gives ids and labels in the order predict() sees them.
    ids, labels = zip(*((i.decode(), label) for i, _, label in cached.as_numpy_iterator()))
    labels = np.array(labels, dtype=np.int64)
    probabilities = model.predict(inputs.evaluation_batches(cached, len(rows), BATCH_SIZE), verbose=2)
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
    predictions = reading.csv_text([PREDICTION_COLUMNS, *((i, classes[label], classes[guess], f"{c:.6f}")
                                                          for i, label, guess, c in zip(ids, labels, predicted,
                                                                                        confidence))])
    sample = min(RESPONSE_IMAGES, len(rows))
    responses = layer_responses(model, inputs.evaluation_batches(cached.take(sample), sample, RESPONSE_BATCH))
    atomic_files.write_text(run.predictions, predictions)
    atomic_files.write_json(run.layer_responses, responses)
    atomic_files.write_json(run.eval_metrics, metrics)  # last: the metric DVC and the report read
    return Evaluation(metrics, matrix, classes, model.name)
