"""A run's records: reading the files its stages wrote (from the workspace, a
study's raw folder or an experiment's commit, through one `read(path) -> text |
None` function), checking each against its schema before any number of it is
averaged or printed, and one arm's numbers summarized once (`summarize_arm`) so
that the arm report, metrics.json and the study agree, diverged runs included.

A committed raw result may be damaged or tampered with, and a report built on an
accuracy of 5.0 or a string "0.7" would publish nonsense: each check names the
field, what it holds and what it must hold; the caller says where the file is
and how to get a good one back.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Callable

import numpy as np

from ablation.core import reading
from ablation.core.errors import DataError, UserError
from ablation.core.layout import RESULTS, run_files
from ablation.core.statistics import SeedSummary, summarize

PREDICTION_COLUMNS = ("id", "label", "predicted", "confidence")  # predictions.csv's header


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
    """eval/layer_responses.json: a std per layer, each finite and non-negative, as many
    as the layers it names (none for a network of your own without 3x3 convolutions:
    the report then draws no Fig. 7 for it)."""
    std = responses.get("std") if isinstance(responses, dict) else None
    if not isinstance(std, list) or not all(_number(v, 0) for v in std):
        _fail(file, "std", std, "a list of finite non-negative numbers, one per layer")
    layers = responses.get("layers")
    if not isinstance(layers, list) or len(layers) != len(std):
        _fail(file, "layers", layers, f"a list of the {len(std)} layer names the std values are of")


def check_predictions(text: str, file: str) -> None:
    """predictions.csv: the header names id, label and predicted; every row has them,
    each id once (a damaged row would silently drop out of McNemar's pairing)."""
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    if tuple(header[:3]) != PREDICTION_COLUMNS[:3]:  # what a report reads of it
        _fail(file, "header", ",".join(header), ",".join(PREDICTION_COLUMNS[:3]) + ",...")
    seen = set()
    for number, row in enumerate(reading.csv_rows(text), start=2):
        if None in row or None in row.values() or not all(row[c] for c in PREDICTION_COLUMNS[:3]) \
                or row["id"] in seen:
            _fail(file, f"row {number}", ",".join(str(v) for v in row.values()),
                  "a row of its own id, label and predicted class, as the header names them")
        seen.add(row["id"])


def check_history(values: list[float], diverged: bool, file: str) -> None:
    """A logged curve: finite numbers, unless the run diverged (its last loss is not)."""
    if not diverged and not all(math.isfinite(v) for v in values):
        _fail(file, "values", [v for v in values if not math.isfinite(v)][:3], "finite numbers (no divergence "
              "is recorded)")


# --- reading a run ------------------------------------------------------------

Reader = Callable[[str], "str | None"]

# History column -> the file dvclive's Keras callback writes under plots/metrics/.
DVCLIVE_FILES = {"loss": "train/loss", "val_loss": "eval/loss", "accuracy": "train/accuracy",
                 "val_accuracy": "eval/accuracy", "learning_rate": "train/learning_rate"}
HISTORY_COLUMNS = tuple(DVCLIVE_FILES)


def workspace_reader(root: str | Path = ".") -> Reader:
    """read(path) of files under root (None for a missing file)."""
    def read(path: str) -> str | None:
        return reading.read_text(Path(root) / path, "record", "rerun the stage that writes it.", optional=True)
    return read


def read_history(read: Reader, live_dir: str, where=str) -> dict[str, list[float]]:
    """Per-epoch values dvclive logged (plots/metrics/<name>.tsv); `where` names a file in errors."""
    history = {}
    for name, file in DVCLIVE_FILES.items():
        path = f"{live_dir}/plots/metrics/{file}.tsv"
        text = read(path)
        if text:
            column = file.split("/")[-1]
            try:
                history[name] = [float(row[column]) for row in reading.csv_rows(text, delimiter="\t")]
            except (KeyError, TypeError, ValueError):
                raise RecordError(f"{where(path)}: not a `step, {column}` table of numbers") from None
    return history


def _json(read: Reader, path: str, missing: str, where=str) -> dict:
    text = read(path)
    if text is None:
        raise DataError(f"{where(path)} is missing. Fix: {missing}")
    return reading.parse_json(text, where(path), missing)


def collect_runs(datasets: list[str], seeds: list[int], read: Reader, results_dir=RESULTS, origin: str | None = None,
                 fix: str | None = None) -> dict:
    """{dataset: {seed: run}}, each run {"train", "eval", "history", "responses",
    "predictions"} as its stages wrote them, each record checked (run_records)
    before it is used. `origin` (a study's raw folder, an experiment) and `fix`
    replace the pipeline's paths and stages in the errors."""
    def where(path: str) -> str:
        return f"{origin}/{path}" if origin else path
    runs = {}
    for dataset in datasets:
        runs[dataset] = {}
        for seed in seeds:
            run = run_files(dataset, seed, results_dir)
            rerun = fix or f"rerun it (`dvc repro -f train@{dataset}-{seed} evaluate@{dataset}-{seed}`)."
            train_metrics = _json(read, run.train_metrics.as_posix(), fix or f"train first (`dvc repro "
                                  f"train@{dataset}-{seed}`).", where)
            evaluate = fix or f"evaluate first (`dvc repro evaluate@{dataset}-{seed}`)."
            eval_metrics = _json(read, run.eval_metrics.as_posix(), evaluate, where)
            responses = read(run.layer_responses.as_posix())
            responses = reading.parse_json(responses, where(run.layer_responses.as_posix()), evaluate) \
                if responses else None
            predictions = read(run.predictions.as_posix())
            try:
                check_train(train_metrics, where(run.train_metrics.as_posix()))
                diverged = train_metrics["diverged"]
                check_eval(eval_metrics, diverged, where(run.eval_metrics.as_posix()))
                history = read_history(read, run.live.as_posix(), where)
                for name, values in history.items():
                    check_history(values, diverged, where(f"{run.live.as_posix()} {name}"))
                if responses is not None:
                    check_responses(responses, where(run.layer_responses.as_posix()))
                if predictions is not None:
                    check_predictions(predictions, where(run.predictions.as_posix()))
            except RecordError as error:
                raise DataError(f"{error}: damaged or edited. Fix: {rerun}") from None
            if not history.get("loss"):
                retrain = f"train again (`dvc repro -f train@{dataset}-{seed}`)."
                raise DataError(f"the training logs in {where(run.live.as_posix())} are missing or empty, so the "
                                f"report would draw no curve. Fix: {fix or retrain}")
            runs[dataset][seed] = {"train": train_metrics, "eval": eval_metrics, "history": history,
                                   "responses": responses, "predictions": predictions}
    return runs


def test_accuracy(run: dict) -> float | None:
    """None for a diverged run: its predictions are placeholders, not a result."""
    return None if run["train"]["diverged"] else run["eval"]["accuracy"]


def final_train_error(run: dict) -> float | None:
    """1 - the last epoch's training accuracy (on augmented images, as the fit
    loop measures it and as the paper's Fig. 6 plots it); None when diverged."""
    accuracy = run["train"].get("train_accuracy")
    return None if run["train"]["diverged"] or accuracy is None else 1.0 - accuracy


def summarize_arm(runs: dict) -> dict[str, dict]:
    """Per dataset: SeedSummary of test accuracy, test error, final training error,
    test loss, train seconds and images/s, plus the model's size."""
    summary = {}
    for dataset, by_seed in runs.items():
        values = list(by_seed.values())
        accuracy = [test_accuracy(r) for r in values]
        first = values[0]["train"]
        summary[dataset] = {
            "test_accuracy": summarize(accuracy),
            "test_error": summarize(None if a is None else 1.0 - a for a in accuracy),
            "train_error": summarize(final_train_error(r) for r in values),
            "test_loss": summarize(None if test_accuracy(r) is None else r["eval"]["loss"] for r in values),
            "train_seconds": summarize(r["train"]["train_seconds"] for r in values),
            "images_per_second": summarize(r["train"]["images_per_second"] for r in values),
            "trainable_params": first["trainable_params"],
            "flops": first["flops"],
        }
    return summary


def metrics_json(summary: dict) -> dict:
    """reports/metrics.json: flat numbers per dataset for `dvc metrics diff` and `dvc exp show`."""
    out = {}
    for dataset, s in summary.items():
        accuracy: SeedSummary = s["test_accuracy"]
        out[dataset] = {
            "test_accuracy": _rounded(accuracy.mean), "test_accuracy_std": _rounded(accuracy.std),
            "test_accuracy_ci95_low": _rounded(accuracy.ci_low), "test_accuracy_ci95_high": _rounded(accuracy.ci_high),
            "train_error": _rounded(s["train_error"].mean), "test_loss": _rounded(s["test_loss"].mean),
            "runs": accuracy.runs, "diverged_runs": accuracy.diverged,
            "train_seconds": _rounded(s["train_seconds"].mean, 1),
            "images_per_second": _rounded(s["images_per_second"].mean, 1),
            "trainable_params": s["trainable_params"], "flops": s["flops"],
        }
    return out


def _rounded(value: float | None, digits: int = 4) -> float | None:
    """A metric as DVC shows it: 4 decimals (accuracies to 0.01%), the rest in the report."""
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def mean_history(runs: dict) -> dict[str, list[float]]:
    """Per-epoch mean over seeds of each logged column (diverged runs left out)."""
    out = {}
    for name in HISTORY_COLUMNS:
        curves = [r["history"][name] for r in runs.values() if r["history"].get(name) and not r["train"]["diverged"]]
        if curves:
            length = min(map(len, curves))
            out[name] = [float(np.mean([c[i] for c in curves])) for i in range(length)]
    return out
