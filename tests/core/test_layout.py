"""dvc.yaml declares exactly the paths ablation/core/layout.py names: one item of each
foreach/matrix stage is expanded and every data dep, out, metric and plot of it
is checked against the layout, both ways."""
import re

import yaml

from ablation.core import layout
from ablation.report import arm_report
from tests.conftest import ROOT

DATASET, SEED = "cifar10", 0


def _paths(entries) -> set[str]:
    """Paths of a deps/outs/metrics/plots list, whose entries are strings or {path: options}."""
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}


def declared_paths() -> set[str]:
    """Every non-code path of dvc.yaml with `${item...}` set to (DATASET, SEED)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    found = set()
    for stage in spec["stages"].values():
        body = stage.get("do", stage)
        for section in ("deps", "outs", "metrics", "plots"):
            found |= {p for p in _paths(body.get(section)) if not p.endswith(".py")}
    found |= _paths(spec.get("metrics")) | _paths(spec.get("plots"))
    item = {"${item}": DATASET, "${item.dataset}": DATASET, "${item.seed}": str(SEED)}
    expanded = {re.sub(r"\$\{item(\.\w+)?\}", lambda m: item[m.group(0)], p) for p in found}
    assert not any("${" in p for p in expanded), expanded
    return expanded


def layout_paths() -> set[str]:
    run, report = layout.run_files(DATASET, SEED), layout.ArmReportFiles()
    paths = [layout.fetched_dir(DATASET), layout.fetch_metrics(DATASET), layout.manifest(DATASET),
             layout.split_counts(DATASET), run.model, run.live, run.train_metrics, run.predictions, run.confusion,
             run.layer_responses, run.eval_metrics, layout.RESULTS, layout.FETCHED, report.report_md,
             report.figures, report.plots, report.metrics,
             *(report.plot_dir(kind) for kind in [*arm_report.PLOT_CSVS, arm_report.CONFUSION_PLOT])]
    return {p.as_posix() for p in paths}


def test_dvc_yaml_declares_the_layouts_paths():
    declared, expected = declared_paths(), layout_paths()
    assert declared - expected == set(), "dvc.yaml paths that ablation/core/layout.py does not name"
    assert expected - declared == set(), "layout paths that dvc.yaml does not declare"


def test_a_renamed_path_is_caught(monkeypatch):
    monkeypatch.setattr(layout.RunFiles, "model", property(lambda self: self.dir / "net.keras"))
    assert "results/cifar10/seed0/model.keras" in declared_paths() - layout_paths()
