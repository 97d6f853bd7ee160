"""The report of one arm: `reports/report.md`, its figures, `reports/metrics.json`
and the CSVs `dvc plots` draws.

Runs are read through a `read(path) -> text | None` function, so the same code
reads the workspace (the report stage) and an experiment's commit (the study).
An arm's numbers are summarized once (`summarize_arm`) and rendered from there,
so the Markdown table, metrics.json and the study agree, diverged runs included.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Callable

import numpy as np
from tabulate import tabulate

from ablation import figures, files, run_records
from ablation.ingest import DataError
from ablation.layout import RESULTS, ReportFiles, fetched_dir, run_files
from ablation.models import model_name
from ablation.params import ModelParams, Params
from ablation.published import PAPER_CIFAR10_ERROR
from ablation.records import read_info
from ablation.statistics import SeedSummary, summarize

Reader = Callable[[str], "str | None"]

# History column -> the file dvclive's Keras callback writes under plots/metrics/.
DVCLIVE_FILES = {"loss": "train/loss", "val_loss": "eval/loss", "accuracy": "train/accuracy",
                 "val_accuracy": "eval/accuracy", "learning_rate": "train/learning_rate"}
HISTORY_COLUMNS = tuple(DVCLIVE_FILES)
# ImageNet val, 10-crop top-1 error: Table 2 (plain nets; ResNets with option A)
# and Table 3 (ResNet-34 with options A/B/C; 50/101/152 with option B).
PAPER_IMAGENET_ERROR = {(18, False, None): (27.94, "Table 2"), (34, False, None): (28.54, "Table 2"),
                        (18, True, "A"): (27.88, "Table 2"), (34, True, "A"): (25.03, "Tables 2/3"),
                        (34, True, "B"): (24.52, "Table 3"), (34, True, "C"): (24.19, "Table 3"),
                        (50, True, "B"): (22.85, "Table 3"), (101, True, "B"): (21.75, "Table 3"),
                        (152, True, "B"): (21.43, "Table 3")}


# --- reading runs ----------------------------------------------------------------

def workspace_reader(root: str | Path = ".") -> Reader:
    """read(path) of files under root (None for a missing file)."""
    def read(path: str) -> str | None:
        full = Path(root) / path
        return full.read_text() if full.exists() else None
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
                history[name] = [float(row[column]) for row in csv.DictReader(text.splitlines(), delimiter="\t")]
            except (KeyError, TypeError, ValueError):
                raise run_records.RecordError(f"{where(path)}: not a `step, {column}` table of numbers") from None
    return history


def _json(read: Reader, path: str, missing: str, where=str) -> dict:
    text = read(path)
    if text is None:
        raise DataError(f"{where(path)} is missing. Fix: {missing}")
    return files.parse_json(text, where(path), missing)


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
            responses = files.parse_json(responses, where(run.layer_responses.as_posix()), evaluate) \
                if responses else None
            predictions = read(run.predictions.as_posix())
            try:
                run_records.check_train(train_metrics, where(run.train_metrics.as_posix()))
                diverged = train_metrics["diverged"]
                run_records.check_eval(eval_metrics, diverged, where(run.eval_metrics.as_posix()))
                history = read_history(read, run.live.as_posix(), where)
                for name, values in history.items():
                    run_records.check_history(values, diverged, where(f"{run.live.as_posix()} {name}"))
                if responses is not None:
                    run_records.check_responses(responses, where(run.layer_responses.as_posix()))
                if predictions is not None:
                    run_records.check_predictions(predictions, where(run.predictions.as_posix()))
            except run_records.RecordError as error:
                raise DataError(f"{error}: damaged or edited. Fix: {rerun}") from None
            if not history.get("loss"):
                retrain = f"train again (`dvc repro -f train@{dataset}-{seed}`)."
                raise DataError(f"the training logs in {where(run.live.as_posix())} are missing or empty, so the "
                                f"report would draw no curve. Fix: {fix or retrain}")
            runs[dataset][seed] = {"train": train_metrics, "eval": eval_metrics, "history": history,
                                   "responses": responses, "predictions": predictions}
    return runs


# --- one arm's numbers -------------------------------------------------------------

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


def arm_table(summary: dict) -> str:
    """The Markdown test table of one arm (pure: the summary in, text out)."""
    rows = [[dataset, s["test_accuracy"].format(), s["train_error"].format(), s["test_loss"].format(),
             s["test_accuracy"].diverged, f"{s['trainable_params']:,}", f"{s['flops'] / 1e9:.3f}",
             s["train_seconds"].format_mean(1), s["images_per_second"].format_mean(1)]
            for dataset, s in summary.items()]
    return tabulate(rows, headers=["dataset", "test accuracy", "final training error", "test loss", "diverged runs",
                                   "parameters", "GFLOPs/image", "train s", "training images/s"],
                    tablefmt="github", disable_numparse=True)


def paper_reference(model: ModelParams, dataset: str, info: dict) -> str | None:
    """The paper's number for this arm, with what differs, or None."""
    if model.arch == "resnet_cifar" and dataset == "cifar10" and model.residual \
            and model.depth in PAPER_CIFAR10_ERROR:
        error = PAPER_CIFAR10_ERROR[model.depth]
        what = "mean of 5 runs (best 6.43)" if model.depth == 110 else "one run"
        option = "" if model.shortcut == "A" else f" (this arm uses option {model.shortcut})"
        jpeg = " The CIFAR-10 here is stored as JPEG (lossy)." if "JPEG" in info.get("formats", {}) else ""
        return (f"paper Table 6: {100 - error:.2f}% accuracy ({error}% error, {what}) with option A{option}, "
                f"64k iterations (~164 epochs) on lossless CIFAR-10.{jpeg}")
    key = (model.depth, model.residual, model.shortcut if model.residual else None)
    if model.arch == "resnet" and key in PAPER_IMAGENET_ERROR:
        error, table = PAPER_IMAGENET_ERROR[key]
        option = f" option {model.shortcut}," if model.residual else ""
        return (f"paper ImageNet ({table},{option} 10-crop): {100 - error:.2f}% top-1 accuracy, 1000 classes, "
                "~120 epochs: another dataset; a reference for the depth trend only")
    return None


# --- the CSVs `dvc plots` draws --------------------------------------------------------

def mean_history(runs: dict) -> dict[str, list[float]]:
    """Per-epoch mean over seeds of each logged column (diverged runs left out)."""
    out = {}
    for name in HISTORY_COLUMNS:
        curves = [r["history"][name] for r in runs.values() if r["history"].get(name) and not r["train"]["diverged"]]
        if curves:
            length = min(map(len, curves))
            out[name] = [float(np.mean([c[i] for c in curves])) for i in range(length)]
    return out


# The per-epoch CSVs `dvc plots` draws: one folder per chart, one file per dataset,
# columns named for the chart's lines -> the history key they hold.
PLOT_CSVS = {"loss": {"train_loss": "loss", "val_loss": "val_loss"},
             "accuracy": {"train_accuracy": "accuracy", "val_accuracy": "val_accuracy"}}


CONFUSION_PLOT = "confusion"  # the plot of actual against predicted classes


def write_history_csvs(history: dict[str, list[float]], out: ReportFiles, dataset: str) -> None:
    """The loss and accuracy plots' CSVs of one dataset from a per-epoch history."""
    for kind, columns in PLOT_CSVS.items():
        present = {column: key for column, key in columns.items() if history.get(key)}
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["epoch", *present])
        for epoch in range(len(history.get("loss", []))):
            writer.writerow([epoch + 1, *(f"{history[key][epoch]:.6g}" if epoch < len(history[key]) else ""
                                          for key in present.values())])
        files.write_text(out.plot_csv(kind, dataset), text.getvalue())


def write_confusion(runs: dict, classes: list[str], csv_path) -> np.ndarray:
    """Confusion matrix over all seeds, and the actual/predicted CSV DVC's confusion plot reads."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    for run in runs.values():
        for row in csv.DictReader((run["predictions"] or "").splitlines()):
            matrix[index[row["label"]], index[row["predicted"]]] += 1
            writer.writerow([row["label"], row["predicted"]])
    files.write_text(csv_path, text.getvalue())
    return matrix


# --- the arm report ---------------------------------------------------------------------

def arm_markdown(params: Params, runs: dict, summary: dict, infos: dict) -> str:
    """reports/report.md's text for the arm, from its runs ({dataset: {seed: run}}),
    their summarize_arm() summary and each dataset's info.json; figures are linked
    by the names write_arm_report gives them."""
    model, name = params.model, model_name(params.model)
    lines = [f"# Arm report: {name}", "",
             f"Architecture `{model.arch}`, depth {model.depth}, residual {str(model.residual).lower()}, "
             f"shortcut option {model.shortcut}; {params.train.epochs} epochs, seeds {list(params.train.seeds)}.",
             "Regenerate with `dvc repro`. Each cell is the mean over seeds ± sample std [95% confidence interval "
             "of the mean, t-based] (n = finite runs); a diverged run is counted, never averaged in.", "",
             "## Test results", "", arm_table(summary), ""]
    references = [(d, paper_reference(model, d, infos[d])) for d in runs]
    if any(ref for _, ref in references):
        lines += ["## Against the paper", ""]
        lines += [f"- {d}: measured {summary[d]['test_accuracy'].format()} accuracy; {ref}" for d, ref in references
                  if ref]
        lines += [""]
    for dataset, by_seed in runs.items():
        per_class = [[c] + [f"{r['eval']['per_class_accuracy'][c]:.3f}"
                            if r["eval"]["per_class_accuracy"][c] is not None and test_accuracy(r) is not None
                            else "n/a" for r in by_seed.values()] for c in infos[dataset]["classes"]]
        lines += [f"## {dataset}", "",
                  f"![curves](figures/{dataset}_curves.png)", "",
                  f"![confusion](figures/{dataset}_confusion.png)", "",
                  "Per-class test accuracy (n/a: a diverged run):", "",
                  tabulate(per_class, headers=["class", *(f"seed {s}" for s in by_seed)], tablefmt="github"), "",
                  "Sample training images per class:", "", f"![samples](figures/{dataset}_samples.png)", ""]
    return "\n".join(lines)


def write_arm_report(params: Params, results_dir, fetched_root, out: ReportFiles) -> dict:
    """The report's Markdown, figures, metrics and plot CSVs
    ({loss,accuracy,confusion}/<dataset>.csv); returns the metrics."""
    runs = collect_runs(params.datasets, params.train.seeds, workspace_reader(), results_dir)
    summary = summarize_arm(runs)
    name = model_name(params.model)
    infos = {d: read_info(fetched_dir(d, fetched_root)) for d in runs}
    for dataset, by_seed in runs.items():
        classes = infos[dataset]["classes"]
        write_history_csvs(mean_history(by_seed), out, dataset)
        figures.plot_curves({f"seed {s}": r["history"] for s, r in by_seed.items()},
                            out.figure(dataset, "curves"), f"{name} on {dataset}")
        matrix = write_confusion(by_seed, classes, out.plot_csv(CONFUSION_PLOT, dataset))
        figures.plot_confusion(matrix, classes, out.figure(dataset, "confusion"),
                               f"{name} on {dataset} (all seeds)")
        figures.plot_samples(fetched_dir(dataset, fetched_root), classes, out.figure(dataset, "samples"))
    files.write_text(out.report_md, arm_markdown(params, runs, summary, infos))
    metrics = metrics_json(summary)
    files.write_json(out.metrics, metrics)
    return metrics
