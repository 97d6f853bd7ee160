"""Reports: the Markdown report and figures of one arm (`reports/`), and the
comparison of every arm of a study (`reports/study.md`)."""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from tabulate import tabulate  # noqa: E402

import tensorflow as tf  # noqa: E402

from ablation.data import read_info, read_records  # noqa: E402
from ablation.layout import run_dir  # noqa: E402
from ablation.models import model_name  # noqa: E402
from ablation.statistics import format_mean_std, mcnemar_p, mean_std  # noqa: E402

# History column -> the file dvclive's Keras callback writes under plots/metrics/.
DVCLIVE_FILES = {"loss": "train/loss", "val_loss": "eval/loss", "accuracy": "train/accuracy",
                 "val_accuracy": "eval/accuracy", "learning_rate": "train/learning_rate"}
HISTORY_COLUMNS = tuple(DVCLIVE_FILES)
# Paper's test error (%) for rows our arms can match: Table 6 (CIFAR-10, option A)
# and Tables 2/3 (ImageNet val, 10-crop top-1; Table 2 ResNets use option A).
PAPER_CIFAR10_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
PAPER_IMAGENET_ERROR = {(18, False): 27.94, (34, False): 28.54, (18, True): 27.88, (34, True): 25.03,
                        (50, True): 22.85, (101, True): 21.75, (152, True): 21.43}


# --- figures -------------------------------------------------------------------

def plot_confusion(matrix: np.ndarray, classes: list[str], path, title: str) -> None:
    size = 2.5 + 0.5 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black", fontsize=8)
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(series: dict[str, dict[str, list[float]]], path, title: str) -> None:
    """The two-panel figure: training loss and validation accuracy per epoch, one
    line per run (seed or arm)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, history in series.items():
        epochs = range(1, len(history.get("loss", [])) + 1)
        left.plot(epochs, history.get("loss", []), label=label)
        if history.get("val_accuracy"):
            right.plot(range(1, len(history["val_accuracy"]) + 1), history["val_accuracy"], label=label)
    left.set(xlabel="epoch", ylabel="training loss", title=f"{title}: training loss")
    right.set(xlabel="epoch", ylabel="validation accuracy", title=f"{title}: validation accuracy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(fetched_dir, classes: list[str], path, per_class: int = 8) -> None:
    """A grid of the first `per_class` fetched images of each class."""
    found = defaultdict(list)
    for example in read_records(fetched_dir).as_numpy_iterator():
        label = int(example["label"])
        if len(found[label]) < per_class:
            found[label].append(tf.io.decode_image(example["image"], channels=3, expand_animations=False).numpy())
        if len(found) == len(classes) and all(len(v) == per_class for v in found.values()):
            break
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 1.2, len(classes) * 1.3), squeeze=False)
    for row, name in enumerate(classes):
        for col in range(per_class):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(found[row]):
                ax.imshow(found[row][col])
        axes[row][0].set_title(name, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_accuracy_vs_depth(points: dict[str, dict[int, float]], path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, by_depth in sorted(points.items()):
        depths = sorted(by_depth)
        ax.plot(depths, [by_depth[d] for d in depths], marker="o", label=label)
    ax.set(xlabel="depth (weighted layers)", ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- reading results ------------------------------------------------------------

def read_history(live_dir) -> dict[str, list[float]]:
    """Per-epoch values dvclive logged (plots/metrics/<name>.tsv)."""
    history = {}
    for name, file in DVCLIVE_FILES.items():
        path = Path(live_dir) / "plots" / "metrics" / f"{file}.tsv"
        if path.exists():
            with open(path) as handle:
                column = file.split("/")[-1]
                history[name] = [float(row[column]) for row in csv.DictReader(handle, delimiter="\t")]
    return history


def collect_arm(params: dict, results_dir) -> dict:
    """{dataset: {seed: {"train": ..., "eval": ..., "history": ...}}} for the arm's runs."""
    arm = {}
    for dataset in params["datasets"]:
        arm[dataset] = {}
        for seed in params["train"]["seeds"]:
            run = run_dir(dataset, seed, results_dir)
            arm[dataset][seed] = {
                "train": json.loads((run / "train.json").read_text()),
                "eval": json.loads((run / "eval" / "metrics.json").read_text()),
                "history": read_history(run / "live"),
            }
    return arm


def summarize_arm(arm: dict) -> dict:
    """The arm's headline metrics per dataset (means over seeds): reports/metrics.json."""
    summary = {}
    for dataset, runs in arm.items():
        accuracy = [r["eval"]["accuracy"] if not r["train"]["diverged"] else None for r in runs.values()]
        accuracy_mean, accuracy_std = mean_std(accuracy)
        first = next(iter(runs.values()))["train"]
        summary[dataset] = {
            "test_accuracy": accuracy_mean,
            "test_accuracy_std": accuracy_std,
            "test_loss": mean_std(r["eval"]["loss"] for r in runs.values())[0],
            "diverged_runs": sum(r["train"]["diverged"] for r in runs.values()),
            "train_seconds": mean_std(r["train"]["train_seconds"] for r in runs.values())[0],
            "images_per_second": mean_std(r["train"]["images_per_second"] for r in runs.values())[0],
            "trainable_params": first["trainable_params"],
            "flops": first["flops"],
            "seeds": len(runs),
        }
    return summary


def mean_history(runs: dict) -> dict[str, list[float]]:
    """Per-epoch mean over seeds of each logged column."""
    out = {}
    for name in HISTORY_COLUMNS:
        curves = [r["history"][name] for r in runs.values() if r["history"].get(name)]
        if curves:
            length = min(map(len, curves))
            out[name] = [float(np.mean([c[i] for c in curves])) for i in range(length)]
    return out


# The per-epoch CSVs `dvc plots` draws: one folder per chart, one file per dataset,
# columns named for the chart's lines -> the history key they hold.
PLOT_CSVS = {"loss": {"train_loss": "loss", "val_loss": "val_loss"},
             "accuracy": {"train_accuracy": "accuracy", "val_accuracy": "val_accuracy"}}


def write_history_csvs(history: dict[str, list[float]], plots_dir, dataset: str) -> None:
    """reports/plots/{loss,accuracy}/<dataset>.csv from a per-epoch history."""
    for kind, columns in PLOT_CSVS.items():
        (Path(plots_dir) / kind).mkdir(parents=True, exist_ok=True)
        present = {column: key for column, key in columns.items() if history.get(key)}
        with open(Path(plots_dir) / kind / f"{dataset}.csv", "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["epoch", *present])
            for epoch in range(len(history.get("loss", []))):
                writer.writerow([epoch + 1, *(f"{history[key][epoch]:.6g}" if epoch < len(history[key]) else ""
                                              for key in present.values())])


def read_history_csvs(texts: dict[str, str | None]) -> dict[str, list[float]]:
    """The history back from the texts of those CSVs, {kind: text}."""
    history = {}
    for kind, text in texts.items():
        for row in csv.DictReader((text or "").splitlines()):
            for column, key in PLOT_CSVS[kind].items():
                if row.get(column):
                    history.setdefault(key, []).append(float(row[column]))
    return history


def paper_reference(model: dict, dataset: str) -> str | None:
    """The paper's number for this arm, with what differs, or None."""
    if model["arch"] == "resnet_cifar" and dataset == "cifar10" and model["residual"] \
            and model["depth"] in PAPER_CIFAR10_ERROR:
        error = PAPER_CIFAR10_ERROR[model["depth"]]
        return (f"paper Table 6: {100 - error:.2f}% accuracy ({error}% error) after 64k iterations (~164 epochs) "
                "on lossless CIFAR-10 with option A")
    key = (model["depth"], model["residual"])
    if model["arch"] == "resnet" and key in PAPER_IMAGENET_ERROR:
        error = PAPER_IMAGENET_ERROR[key]
        return (f"paper ImageNet (Tables 2/3): {100 - error:.2f}% top-1 accuracy, 10-crop, 1000 classes, "
                "~120 epochs: another dataset; a reference for the depth trend only")
    return None


def write_arm_report(params: dict, results_dir, fetched_root, out_dir) -> dict:
    """reports/report.md, reports/figures/*.png, reports/metrics.json,
    reports/plots/{loss,accuracy,confusion}/<dataset>.csv."""
    out_dir = Path(out_dir)
    figures, plots_dir, confusion_dir = out_dir / "figures", out_dir / "plots", out_dir / "plots" / "confusion"
    for folder in (figures, confusion_dir):
        folder.mkdir(parents=True, exist_ok=True)
    arm = collect_arm(params, results_dir)
    summary = summarize_arm(arm)
    model = params["model"]
    name = model_name(model)
    lines = [f"# Arm report: {name}", "",
             f"Architecture `{model['arch']}`, depth {model['depth']}, residual {str(model['residual']).lower()}, "
             f"shortcut option {model['shortcut']}; {params['train']['epochs']} epochs, seeds {params['train']['seeds']}.",
             "Regenerate with `dvc repro`. Values are means over seeds (± sample std when there are several).", ""]
    table = []
    for dataset, runs in arm.items():
        first = next(iter(runs.values()))["train"]
        table.append([dataset,
                      format_mean_std([r["eval"]["accuracy"] for r in runs.values()]),
                      format_mean_std([r["eval"]["loss"] for r in runs.values()]),
                      sum(r["train"]["diverged"] for r in runs.values()),
                      f"{first['trainable_params']:,}", f"{first['flops'] / 1e9:.3f}",
                      format_mean_std([r["train"]["train_seconds"] for r in runs.values()], 1),
                      format_mean_std([r["train"]["images_per_second"] for r in runs.values()], 1)])
    lines += ["## Test results", "", tabulate(table, headers=["dataset", "test accuracy", "test loss", "diverged runs",
                                                               "parameters", "GFLOPs/image", "train s", "images/s"],
                                              tablefmt="github"), ""]
    references = [(d, paper_reference(model, d)) for d in arm]
    if any(ref for _, ref in references):
        lines += ["## Against the paper", ""]
        lines += [f"- {d}: measured {summary[d]['test_accuracy']:.4f} accuracy; {ref}." for d, ref in references
                  if ref and summary[d]["test_accuracy"] is not None]
        lines += ["- Differences: the offline CIFAR-10 copy is JPEG (quality 75), and quick runs use far "
                  "fewer epochs and images than the paper.", ""]
    for dataset, runs in arm.items():
        classes = read_info(Path(fetched_root) / dataset)["classes"]
        write_history_csvs(mean_history(runs), plots_dir, dataset)
        plot_curves({f"seed {s}": r["history"] for s, r in runs.items()}, figures / f"{dataset}_curves.png",
                    f"{name} on {dataset}")
        matrix = _confusion_from_predictions(runs, classes, confusion_dir / f"{dataset}.csv", results_dir, dataset)
        plot_confusion(matrix, classes, figures / f"{dataset}_confusion.png", f"{name} on {dataset} (all seeds)")
        plot_samples(Path(fetched_root) / dataset, classes, figures / f"{dataset}_samples.png")
        per_class = [[c] + [f"{r['eval']['per_class_accuracy'][c]:.3f}" if r["eval"]["per_class_accuracy"][c] is not None
                            else "n/a" for r in runs.values()] for c in classes]
        lines += [f"## {dataset}", "",
                  f"![curves](figures/{dataset}_curves.png)", "",
                  f"![confusion](figures/{dataset}_confusion.png)", "",
                  "Per-class test accuracy:", "",
                  tabulate(per_class, headers=["class", *(f"seed {s}" for s in runs)], tablefmt="github"), "",
                  f"Sample training images per class:", "", f"![samples](figures/{dataset}_samples.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _confusion_from_predictions(runs, classes, csv_path, results_dir, dataset) -> np.ndarray:
    """Confusion matrix over all seeds, and the actual/predicted CSV DVC's confusion plot reads."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    with open(csv_path, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        for seed in runs:
            with open(run_dir(dataset, seed, results_dir) / "eval" / "predictions.csv") as handle:
                for row in csv.DictReader(handle):
                    matrix[index[row["label"]], index[row["predicted"]]] += 1
                    writer.writerow([row["label"], row["predicted"]])
    return matrix


# --- the study ------------------------------------------------------------------

def _grid_key_without_residual(arm: dict) -> tuple:
    return tuple(o for o in arm["overrides"] if not o.startswith("model.residual="))


def _paired_p(residual_csv: str | None, plain_csv: str | None) -> str:
    """McNemar p-value of two arms' predictions.csv texts, paired by example id."""
    if not residual_csv or not plain_csv:
        return "n/a"

    def correct(text):
        return {row["id"]: row["label"] == row["predicted"] for row in csv.DictReader(text.splitlines())}

    a, b = correct(residual_csv), correct(plain_csv)
    ids = sorted(a.keys() & b.keys())
    return f"{mcnemar_p([a[i] for i in ids], [b[i] for i in ids]):.3g}"


def write_study_report(results: list[dict], out_dir) -> str:
    """reports/study.md and reports/study/*.png comparing every arm of the study."""
    out_dir = Path(out_dir)
    figures = out_dir / "study"
    figures.mkdir(parents=True, exist_ok=True)
    done = [r for r in results if not r["failed"]]
    datasets = list(dict.fromkeys(d for r in done for d in r["metrics"]))
    rows = []
    for r in results:
        if r["failed"]:
            rows.append([r["name"], "all", "failed: see `dvc queue logs " + r["name"] + "`", "", "", "", ""])
            continue
        for dataset, m in r["metrics"].items():
            accuracy = "diverged" if m["test_accuracy"] is None else (
                f"{m['test_accuracy']:.4f}" + (f" ± {m['test_accuracy_std']:.4f}" if m["seeds"] > 1 else ""))
            rows.append([r["name"], dataset, accuracy, m["diverged_runs"], f"{m['trainable_params']:,}",
                         f"{m['flops'] / 1e9:.3f}", f"{m['train_seconds']:.0f}" if m["train_seconds"] else ""])
    lines = ["# Study: what the residual connection buys", "",
             "Every arm of `study.grid`, run as a DVC experiment (`python -m stages.study`). "
             "Accuracy is on each dataset's test split, mean over seeds.", "",
             tabulate(rows, headers=["arm", "dataset", "test accuracy", "diverged runs", "parameters",
                                     "GFLOPs/image", "train s"], tablefmt="github"), ""]
    pairs = defaultdict(dict)
    for r in done:
        pairs[_grid_key_without_residual(r)][r["params"]["model"]["residual"]] = r
    gains = []
    for key, pair in pairs.items():
        if True in pair and False in pair:
            for dataset in datasets:
                with_res, plain = pair[True]["metrics"][dataset], pair[False]["metrics"][dataset]
                if with_res["test_accuracy"] is not None and plain["test_accuracy"] is not None:
                    gain = f"{with_res['test_accuracy'] - plain['test_accuracy']:+.4f}"
                else:
                    gain = "n/a (diverged)"
                gains.append([pair[True]["name"], pair[False]["name"], dataset, gain,
                              _paired_p(pair[True]["predictions"].get(dataset), pair[False]["predictions"].get(dataset))])
    if gains:
        lines += ["## Accuracy gained by the residual connection", "",
                  tabulate(gains, headers=["residual arm", "plain twin", "dataset", "accuracy gain",
                                           "McNemar p (first seed)"], tablefmt="github", disable_numparse=True), "",
                  "The p-value is the exact McNemar test on the two arms' per-example test predictions: "
                  "how likely a split of disagreements this uneven is if both arms were equally accurate.", ""]
    for dataset in datasets:
        series = {r["name"]: read_history_csvs(r["histories"][dataset]) for r in done if r["histories"].get(dataset)}
        plot_curves(series, figures / f"{dataset}_curves.png", f"all arms on {dataset}")
        points = defaultdict(dict)
        for r in done:
            accuracy = r["metrics"][dataset]["test_accuracy"]
            if accuracy is not None:
                label = "residual" if r["params"]["model"]["residual"] else "plain"
                points[label][r["params"]["model"]["depth"]] = accuracy
        plot_accuracy_vs_depth(points, figures / f"{dataset}_accuracy_vs_depth.png", dataset)
        lines += [f"## {dataset}", "", f"![curves](study/{dataset}_curves.png)", "",
                  f"![accuracy against depth](study/{dataset}_accuracy_vs_depth.png)", ""]
    text = "\n".join(lines)
    (out_dir / "study.md").write_text(text)
    return text
