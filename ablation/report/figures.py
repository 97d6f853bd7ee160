"""Every figure of the reports, drawn with matplotlib into PNG files."""
from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only, no display
# Class names, arm names and grid values are drawn as typed: `$x$` in a class folder's
# name is no formula (and a malformed one would stop the stage in mathtext).
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ablation.core import escaping  # noqa: E402
from ablation.core.atomic_files import atomic_path  # noqa: E402
from ablation.data.shards import read_records  # noqa: E402


def _save(fig, path) -> None:
    fig.tight_layout()
    try:
        with atomic_path(path) as partial:
            fig.savefig(partial, dpi=100)
    finally:
        plt.close(fig)


def _integer_ticks(*axes) -> None:
    """Integer x ticks (epochs, layer indices) and a light grid."""
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)


def plot_confusion(matrix: np.ndarray, classes: list[str], path, title: str) -> None:
    size = 2.5 + 0.5 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black", fontsize=8)
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels([escaping.figure(c) for c in classes], rotation=45, ha="right")
    ax.set_yticklabels([escaping.figure(c) for c in classes])
    _save(fig, path)


def plot_curves(series: dict[str, dict[str, list[float]]], path, title: str) -> None:
    """The two-panel figure: training loss and validation accuracy per epoch, one
    line per run (seed or arm)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, history in series.items():
        left.plot(range(1, len(history.get("loss", [])) + 1), history.get("loss", []), label=label)
        if history.get("val_accuracy"):
            right.plot(range(1, len(history["val_accuracy"]) + 1), history["val_accuracy"], label=label)
    # Keras' logged loss adds the L2 penalty of the weights to the cross-entropy.
    left.set(xlabel="epoch", ylabel="training loss (with L2 penalty)", title=f"{title}: training loss")
    right.set(xlabel="epoch", ylabel="validation accuracy", title=f"{title}: validation accuracy")
    _integer_ticks(left, right)
    for ax in (left, right):
        ax.legend(fontsize=8)
    _save(fig, path)


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
        axes[row][0].set_title(escaping.figure(name), fontsize=9, loc="left")
    _save(fig, path)


def plot_accuracy_vs_depth(points: dict[str, dict[int, tuple[float, float, float]]], path, title: str) -> None:
    """Mean test accuracy against depth with its 95% CI over seeds as error bars;
    points: {label: {depth: (mean, ci_low, ci_high)}} (CI bounds may be None)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, by_depth in sorted(points.items()):
        depths = sorted(by_depth)
        means = np.array([by_depth[d][0] for d in depths])
        low = np.array([by_depth[d][1] if by_depth[d][1] is not None else by_depth[d][0] for d in depths])
        high = np.array([by_depth[d][2] if by_depth[d][2] is not None else by_depth[d][0] for d in depths])
        ax.errorbar(depths, means, yerr=[means - low, high - means], marker="o", capsize=4, label=label)
    ax.set(xlabel="depth (weighted layers)", ylabel="test accuracy (mean, 95% CI over seeds)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_degradation(panels: dict[str, dict[int, dict[str, list[float]]]], path, title: str,
                     chance_error: float | None = None) -> None:
    """The paper's Fig. 6: one panel per family (plain, residual), same axes; per
    depth, training error per epoch (bold) and validation error (thin), in %, and
    guessing's error as a dotted line where it is known (a net can sit there).
    panels: {family: {depth: {"train_error": [...], "val_error": [...]}}}."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    depths = sorted({d for curves in panels.values() for d in curves})
    for ax, (family, curves) in zip(axes[0], panels.items()):
        for depth in sorted(curves):
            color = colors[depths.index(depth) % len(colors)]
            for key, width, style in (("train_error", 2.5, "-"), ("val_error", 1.0, "--")):
                values = curves[depth].get(key) or []
                if values:
                    ax.plot(range(1, len(values) + 1), 100 * np.asarray(values), style, color=color, linewidth=width,
                            label=f"{family}-{depth} {'train' if key == 'train_error' else 'val'}")
        if chance_error is not None:
            ax.axhline(100 * chance_error, color="grey", linestyle=":", linewidth=1.2, label="chance (guessing)")
        ax.set(xlabel="epoch", ylabel="error (%)", title=f"{title}: {family}")
        _integer_ticks(ax)
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_layer_responses(by_depth: dict[int, dict[str, list[float]]], path, title: str) -> None:
    """The paper's Fig. 7: std of each 3x3 layer's response (after BN, before the
    addition and ReLU) by layer index, plain against residual, one panel per depth.
    by_depth: {depth: {family: [std per layer]}}."""
    depths = sorted(by_depth)
    fig, axes = plt.subplots(1, len(depths), figsize=(5.5 * len(depths), 4), sharey=True, squeeze=False)
    for ax, depth in zip(axes[0], depths):
        for family, values in sorted(by_depth[depth].items()):
            ax.plot(range(1, len(values) + 1), values, marker=".", label=f"{family}-{depth}")
        ax.set(xlabel="layer index (3x3 convolutions, input to output)", ylabel="std of response",
               title=f"{title}: depth {depth}")
        _integer_ticks(ax)  # integer ticks, grid
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_knob_effect(series: dict[str, dict[str, tuple]], values: list[str], path, key: str, title: str) -> None:
    """Test accuracy against one grid key's values (in grid order): every seed a
    small point, the mean with its 95% CI over seeds as an error bar, one line per
    combination of the other grid keys. series: {combination: {value: (finite
    accuracy per seed, mean, CI low, CI high)}} (CI bounds None below two seeds)."""
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 * len(values) + 3), 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.25 if len(series) > 1 else 0.0
    for index, (combination, by_value) in enumerate(sorted(series.items())):
        color = colors[index % len(colors)]
        offset = (index - (len(series) - 1) / 2) * width / max(len(series) - 1, 1)
        xs, means, low, high = [], [], [], []
        for position, value in enumerate(values):
            if value not in by_value or not by_value[value][0]:
                continue
            accuracies, mean, ci_low, ci_high = by_value[value]
            x = position + offset
            ax.scatter([x] * len(accuracies), accuracies, s=14, color=color, alpha=0.45, linewidths=0)
            xs.append(x)
            means.append(mean)
            low.append(mean - (mean if ci_low is None else ci_low))
            high.append((mean if ci_high is None else ci_high) - mean)
        if xs:
            ax.errorbar(xs, means, yerr=[low, high], marker="o", capsize=4, color=color,
                        label=escaping.figure(combination))
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels([escaping.figure(v) for v in values], rotation=20 if max(map(len, values)) > 8 else 0)
    ax.set(xlabel=key, ylabel="test accuracy (seeds; mean, 95% CI)", title=f"{title}: {key}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
