"""The schema of a run's records, checked before any number of them is averaged
or printed: a committed raw result may be damaged or tampered with, and a report
built on an accuracy of 5.0 or a string "0.7" would publish nonsense.

Each check names the field, what it holds and what it must hold; the caller
says where the file is and how to get a good one back.
"""
from __future__ import annotations

import csv
import math

from ablation.errors import UserError

RAW_FILE_LIMIT = 256 * 1024 * 1024  # bytes a raw record may inflate to (10,000 predictions: ~400 KB)
PREDICTION_COLUMNS = ("id", "label", "predicted")


class RecordError(UserError):
    """A run's record is missing a field, or holds a value of the wrong type or range."""


def _number(value, low=None, high=None, integer=False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    return math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)


def _fail(file: str, field: str, value, allowed: str) -> None:
    raise RecordError(f"{file}: `{field}` is {str(value)[:40]!r}, not {allowed}")


def check_train(train, file: str) -> None:
    """train.json: a divergence record, or a finite training accuracy in [0, 1]; sizes,
    timings and speed as non-negative numbers; the machine as a mapping."""
    if not isinstance(train, dict):
        _fail(file, "(the file)", train, "a JSON object")
    if not isinstance(train.get("diverged"), bool):
        _fail(file, "diverged", train.get("diverged"), "true or false (the divergence record)")
    if not train["diverged"] and not _number(train.get("train_accuracy"), 0, 1):
        _fail(file, "train_accuracy", train.get("train_accuracy"), "a number in [0, 1] (or diverged: true)")
    if not _number(train.get("trainable_params"), 0, integer=True):
        _fail(file, "trainable_params", train.get("trainable_params"), "a non-negative integer")
    for field in ("flops", "train_seconds", "images_per_second"):
        if not _number(train.get(field), 0):
            _fail(file, field, train.get(field), "a finite non-negative number")
    if train.get("machine") is not None and not isinstance(train["machine"], dict):
        _fail(file, "machine", train["machine"], "a mapping of the machine's description")


def check_eval(metrics, diverged: bool, file: str) -> None:
    """eval/metrics.json: test accuracy in [0, 1], a finite loss unless the run diverged,
    per-class accuracies in [0, 1] (null for a class the test split lacks)."""
    if not isinstance(metrics, dict):
        _fail(file, "(the file)", metrics, "a JSON object")
    if not _number(metrics.get("accuracy"), 0, 1):
        _fail(file, "accuracy", metrics.get("accuracy"), "a number in [0, 1]")
    if not diverged and not _number(metrics.get("loss")):
        _fail(file, "loss", metrics.get("loss"), "a finite number (the run did not diverge)")
    per_class = metrics.get("per_class_accuracy", {})
    if not isinstance(per_class, dict) or not all(v is None or _number(v, 0, 1) for v in per_class.values()):
        _fail(file, "per_class_accuracy", per_class, "a mapping of class to a number in [0, 1]")


def check_responses(responses, file: str) -> None:
    """eval/layer_responses.json: a std per layer, each finite and non-negative."""
    std = responses.get("std") if isinstance(responses, dict) else None
    if not isinstance(std, list) or not all(_number(v, 0) for v in std):
        _fail(file, "std", std, "a list of finite non-negative numbers, one per layer")


def check_predictions(text: str, file: str) -> None:
    """predictions.csv: the header names id, label and predicted."""
    header = next(csv.reader(text.splitlines()[:1]), [])
    if tuple(header[:3]) != PREDICTION_COLUMNS:
        _fail(file, "header", ",".join(header), "id,label,predicted,...")


def check_history(values: list[float], diverged: bool, file: str) -> None:
    """A logged curve: finite numbers, unless the run diverged (its last loss is not)."""
    if not diverged and not all(math.isfinite(v) for v in values):
        _fail(file, "values", [v for v in values if not math.isfinite(v)][:3], "finite numbers (no divergence "
              "is recorded)")
