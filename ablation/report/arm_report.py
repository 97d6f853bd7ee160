"""The report of one arm: `reports/report.md`, its figures, `reports/metrics.json`
and the CSVs `dvc plots` draws.

Runs are read through a `read(path) -> text | None` function, so the same code
reads the workspace (the report stage) and an experiment's commit (the study).
An arm's numbers are summarized once (`summarize_arm`) and rendered from there,
so the Markdown table, metrics.json and the study agree, diverged runs included.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from tabulate import tabulate

from ablation.core import atomic_files, escaping, machine, reading
from ablation.core.layout import ArmReportFiles, fetched_dir
from ablation.core.params import Params
from ablation.core.run_records import (
    collect_runs,
    mean_history,
    metrics_json,
    summarize_arm,
    test_accuracy,
    workspace_reader,
)
from ablation.core.sections import ModelParams
from ablation.core.statistics import confusion_matrix
from ablation.data.shards import read_info
from ablation.nets.models import ARCHITECTURES, block_of, model_name
from ablation.report import figures
from ablation.report.dvc_view import history_csv
from ablation.report.published import PAPER_IMAGENET_ERROR, arm_reference, published


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
    if row := published(model, block_of(model), dataset):  # the study report's match, the same rows
        jpeg = " The CIFAR-10 here is stored as JPEG (lossy)." if "JPEG" in info.get("formats", {}) else ""
        return f"{arm_reference(row)}, 64k iterations (~164 epochs) on lossless CIFAR-10.{jpeg}"
    key = (model.depth, model.residual, model.shortcut if model.residual else None)
    if model.arch == "resnet" and key in PAPER_IMAGENET_ERROR:
        error, table = PAPER_IMAGENET_ERROR[key]
        option = f" option {model.shortcut}," if model.residual else ""
        return (f"paper ImageNet ({table},{option} 10-crop): {100 - error:.2f}% top-1 accuracy, 1000 classes, "
                "~120 epochs: another dataset; a reference for the depth trend only")
    return None


# --- the CSVs `dvc plots` draws --------------------------------------------------------

# The per-epoch CSVs `dvc plots` draws: one folder per chart, one file per dataset,
# columns named for the chart's lines -> the history key they hold.
PLOT_CSVS = {"loss": {"train_loss": "loss", "val_loss": "val_loss"},
             "accuracy": {"train_accuracy": "accuracy", "val_accuracy": "val_accuracy"}}


CONFUSION_PLOT = "confusion"  # the plot of actual against predicted classes


def write_history_csvs(history: dict[str, list[float]], out: ArmReportFiles, dataset: str) -> None:
    """The loss and accuracy plots' CSVs of one dataset from a per-epoch history."""
    for kind, columns in PLOT_CSVS.items():
        present = {column: history[key] for column, key in columns.items() if history.get(key)}
        atomic_files.write_text(out.plot_csv(kind, dataset), history_csv(present, len(history.get("loss", []))))


def write_confusion(runs: dict, classes: list[str], csv_path) -> np.ndarray:
    """Confusion matrix over all seeds, and the actual/predicted CSV DVC's confusion plot reads."""
    index = {c: i for i, c in enumerate(classes)}
    rows = [(row["label"], row["predicted"]) for run in runs.values()
            for row in reading.csv_rows(run["predictions"])]
    atomic_files.write_text(csv_path, reading.csv_text([("actual", "predicted"), *rows]))
    return confusion_matrix([index[a] for a, _ in rows], [index[p] for _, p in rows], len(classes))


# --- the arm report ---------------------------------------------------------------------

def ran_in(runs: dict) -> str:
    """Where and in what precision the runs trained (train.json), each kind with its runs."""
    kinds = Counter(f"{escaping.text(r['train'].get('mixed_precision') or 'a precision not recorded')} on "
                    f"{escaping.text(machine.summary(r['train'].get('machine')))}"
                    for by_seed in runs.values() for r in by_seed.values())
    return "Trained in " + "; ".join(f"{kind} ({count} run{'s' * (count > 1)})" for kind, count in kinds.items()) + "."


def arm_markdown(params: Params, runs: dict, summary: dict, infos: dict) -> str:
    """reports/report.md's text for the arm, from its runs ({dataset: {seed: run}}),
    their summarize_arm() summary and each dataset's info.json; figures are linked
    by the names write_arm_report gives them."""
    model, name = params.model, model_name(params.model)
    what = (f"Your network `{model.arch}`, options {dict(model.options)} (the builder's defaults for the others)"
            if model.arch not in ARCHITECTURES else
            f"Architecture `{model.arch}`, depth {model.depth}, residual {str(model.residual).lower()}, "
            f"shortcut option {model.shortcut}")
    lines = [f"# Arm report: {name}", "",
             f"{what}; {params.train.epochs} epochs, seeds {list(params.train.seeds)}. {ran_in(runs)}",
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
        per_class = [[escaping.text(c)] + [f"{r['eval']['per_class_accuracy'][c]:.3f}"
                            if r["eval"]["per_class_accuracy"][c] is not None and test_accuracy(r) is not None
                            else "n/a" for r in by_seed.values()] for c in infos[dataset]["classes"]]
        lines += [f"## {dataset}", "",
                  f"![curves](figures/{dataset}_curves.png)", "",
                  f"![confusion](figures/{dataset}_confusion.png)", "",
                  "Per-class test accuracy (n/a: a diverged run):", "",
                  tabulate(per_class, headers=["class", *(f"seed {s}" for s in by_seed)], tablefmt="github"), "",
                  "Sample training images per class:", "", f"![samples](figures/{dataset}_samples.png)", ""]
    return "\n".join(lines)


def write_arm_report(params: Params, results_dir, fetched_root, out: ArmReportFiles) -> dict:
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
    atomic_files.write_text(out.report_md, arm_markdown(params, runs, summary, infos))
    metrics = metrics_json(summary)
    atomic_files.write_json(out.metrics, metrics)
    return metrics
