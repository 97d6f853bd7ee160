"""What DVC shows of a study and of an arm: a study's metrics.json (headline
numbers per arm and dataset), its per-epoch CSVs and the dvc.yaml that makes
`dvc metrics show`, `dvc plots show` and `dvc metrics diff` read them; and the
one per-epoch CSV format both the study's and the arm report's plots use."""
from __future__ import annotations

import csv
import io

import yaml

from ablation.core import atomic_files
from ablation.core.layout import StudyFiles
from ablation.core.run_records import mean_history, metrics_json, summarize_arm


def history_csv(columns: dict[str, list[float]], epochs: int | None = None) -> str:
    """The per-epoch CSV `dvc plots` draws: an epoch column, then one per line of the
    chart, over `epochs` rows (default: the longest column); a shorter column is blank."""
    epochs = max((len(v) for v in columns.values()), default=0) if epochs is None else epochs
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *columns])
    for epoch in range(epochs):
        writer.writerow([epoch + 1, *(f"{v[epoch]:.6g}" if epoch < len(v) else "" for v in columns.values())])
    return buffer.getvalue()


# Per arm and dataset in metrics.json: the headline, few enough for `dvc exp show`'s
# columns (the rest is in the report and the raw results).
STUDY_METRICS = ("test_accuracy", "test_accuracy_std", "train_error", "runs", "diverged_runs")
# .dvc/plots/lines.json: colour = the line (an arm, sorted: the same in every chart), dash = the revision
PLOT_TEMPLATE = "lines"
PLOTS = {"training_error": "accuracy", "validation_error": "val_accuracy"}  # plot -> history column (1 - it)


def write_dvc_view(done, out: StudyFiles) -> None:
    """metrics.json ({arm: {dataset: headline numbers}}), one CSV per plot and
    dataset (epoch x arm, mean over seeds) and the dvc.yaml that makes DVC show
    them: `dvc metrics show`, `dvc plots show`, and after a rerun
    `dvc metrics diff` of each arm."""
    atomic_files.write_json(out.metrics, {r.name: {dataset: {key: numbers[key] for key in STUDY_METRICS}
                                            for dataset, numbers in metrics_json(summarize_arm(r.runs)).items()}
                                   for r in done})
    datasets = list(dict.fromkeys(d for r in done for d in r.runs))
    for plot, column in PLOTS.items():
        for dataset in datasets:
            curves = {r.name: [1 - v for v in mean_history(r.runs[dataset]).get(column, [])] for r in done
                      if dataset in r.runs}
            atomic_files.write_text(out.plot_csv(plot, dataset), history_csv(curves))
    arms = [r.name for r in done]
    # One chart per plot and dataset, each arm its own colour (the template
    # .dvc/plots/lines.json; DVC's own would colour revisions and dash the arms).
    view = {"metrics": ["metrics.json"],
            "plots": [{out.plot_csv(plot, dataset).relative_to(out.dir).as_posix(): {
                "x": "epoch", "y": arms, "template": PLOT_TEMPLATE,
                "title": f"{out.name}, {dataset}: {plot.replace('_', ' ')}", "x_label": "epoch",
                "y_label": plot.replace("_", " ")}}
                for plot in PLOTS for dataset in datasets]}
    atomic_files.write_text(out.dvc_yaml, "# Written by ablate study: this study's numbers for DVC.\n"
                     + yaml.safe_dump(view, sort_keys=False))
