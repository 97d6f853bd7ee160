"""What DVC shows in a fresh clone, before anything runs: the committed headline
metrics of the shipped arm and of every committed study, one row per experiment in
`dvc exp show`, and plots with one colour per arm and a title naming the dataset."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT



def studies(clone: Path) -> list[str]:
    """The committed studies (a local, uncommitted one is not in the clone)."""
    return sorted(path.parent.name for path in (clone / "reports").glob("*/study.json"))


def dvc(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(clone.parent / "dvc-site")}
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=clone, capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stderr[-2000:]}"
    assert "failed to load" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of the last commit, as a new user gets it."""
    path = tmp_path_factory.mktemp("views") / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True)
    return path


def test_metrics_show_and_diff_read_every_committed_metric(clone):
    shown = json.loads(dvc(clone, "metrics", "show", "--json").stdout)
    (workspace,) = shown.values()  # DVC names the workspace ""
    files = workspace["data"]
    assert {"cifar10-cpu", "cats-vs-dogs-cpu"} <= set(studies(clone))
    expected = {"reports/metrics.json", *(f"reports/{study}/metrics.json" for study in studies(clone))}
    assert set(files) == expected and not any("error" in entry for entry in files.values())
    arm = files["reports/metrics.json"]["data"]["cifar10"]
    assert 0 < arm["test_accuracy"] < 1 and arm["test_accuracy"] == round(arm["test_accuracy"], 4)
    for study in studies(clone):
        numbers = files[f"reports/{study}/metrics.json"]["data"]
        assert all(set(by_dataset) <= {"cifar10", "cats_vs_dogs"} for by_dataset in numbers.values()), study
    assert json.loads(dvc(clone, "metrics", "diff", "--json").stdout) == {}  # nothing changed since the commit


def test_exp_show_has_one_row_per_experiment_with_only_headline_metrics(clone):
    rows = json.loads(dvc(clone, "exp", "show", "--json").stdout)
    assert [row["rev"] for row in rows] == ["workspace", rows[1]["rev"]] and len(rows) == 2  # no experiments yet
    data = rows[0]["data"]
    assert set(data["metrics"]) == {"reports/metrics.json",
                                    *(f"reports/{study}/metrics.json" for study in studies(clone))}
    assert {"model", "train", "datasets"} <= set(data["params"]["params.yaml"]["data"])


def test_plots_show_one_colour_per_arm_and_name_study_and_dataset(clone):
    shown = json.loads(dvc(clone, "plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown.get("errors")
    plots = shown["data"]
    assert all(plots[name] for name in plots), [name for name in plots if not plots[name]]  # no empty placeholder
    for study in studies(clone):
        view = yaml.safe_load((clone / "reports" / study / "dvc.yaml").read_text())
        for definition in view["plots"]:
            (path, props), = definition.items()
            content = plots[f"reports/{study}/{path}"][0]["content"]
            dataset = Path(path).stem
            assert content["title"] == props["title"] and f"{study}, {dataset}: " in props["title"]
            assert content["encoding"]["color"]["field"] == "field"  # the line: one colour per arm
            arms = {point["field"] for point in content["data"]["values"]}
            assert arms == set(props["y"]) and content["encoding"]["y"]["title"] != "y"
    pipeline = plots["reports/plots/loss/cifar10.csv"][0]["content"]
    assert pipeline["encoding"]["y"]["scale"] == {"type": "log"}
    assert {point["field"] for point in pipeline["data"]["values"]} == {"train_loss", "val_loss"}


def test_dvc_plots_output_is_ignored():
    ignored = subprocess.run(["git", "check-ignore", "dvc_plots/index.html"], cwd=ROOT, capture_output=True)
    assert ignored.returncode == 0
