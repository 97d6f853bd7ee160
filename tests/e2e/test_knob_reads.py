"""The guard behind the knob declarations: each stage of a tiny run records which
knobs its code really reads (core/knob_reads.py), and every knob read must be
declared for that stage, listed in that stage's `params:` in dvc.yaml and, for
train, in the run fingerprint that names its checkpoint."""
import json
import shutil

import pytest
import yaml

from ablation.core import declarations
from ablation.core.knob_reads import FOLDER, SWITCH
from ablation.core.params import load_params
from tests.conftest import DATASET, ROOT, pets, stage, write_tree

STAGE_ARGS = {"fetch": [DATASET], "split": [DATASET], "train": [DATASET, "0"], "evaluate": [DATASET, "0"],
              "report": []}


@pytest.fixture(scope="module")
def reads(tmp_path_factory) -> dict[str, set[str]]:
    """stage -> the knobs it read, over one tiny run of all five stages."""
    root = tmp_path_factory.mktemp("knob_reads")
    for name in ("ablation", "params.yaml", "dvc.yaml"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = [DATASET]
    params["data"].update(paths={DATASET: str(write_tree(root / "inputs", pets()))})
    params["data"]["image_size"][DATASET] = 24
    params["model"].update(depth=8)
    params["train"].update(epochs=1)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name, args in STAGE_ARGS.items():
        stage(root, name, *args, env={SWITCH: "1"})
    return {name: set(json.loads((root / FOLDER / f"{name}.json").read_text())) for name in STAGE_ARGS}


def uncovered(reads: dict[str, set[str]], dvc_yaml) -> list[str]:
    """Each knob a stage read that its declaration or its dvc.yaml `params:` leaves out."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    problems = []
    for name, keys in reads.items():
        listed = set(stages[name].get("do", stages[name]).get("params", []))
        for key in sorted(keys):
            if name not in declarations.knobs()[key].stages if key in declarations.knobs() else True:
                problems.append(f"{name} reads {key}, which its declaration does not name {name} a reader of")
            if key not in listed and key.split(".")[0] not in listed:
                problems.append(f"{name} reads {key}, which dvc.yaml's {name} params do not list")
    return problems


@pytest.mark.slow
def test_every_knob_a_stage_reads_is_declared_and_in_its_dvc_params(reads):
    assert {"data.source", "data.paths"} <= reads["fetch"]
    assert {"split.seed", "data.limit"} <= reads["split"]
    assert {"model.depth", "data.augment", "train.epochs", "train.learning_rate"} <= reads["train"]
    assert "data.image_size" in reads["evaluate"] and "train.seeds" in reads["report"]
    assert uncovered(reads, ROOT / "dvc.yaml") == []


@pytest.mark.slow
def test_every_knob_train_reads_is_in_the_run_fingerprint(reads, tmp_path):
    from ablation.training.fit import run_fingerprint
    run = load_params(ROOT / "params.yaml").for_dataset("cifar10")
    fingerprint = run_fingerprint(run, 0, tmp_path, tmp_path)["knobs"]
    assert reads["train"] - set(fingerprint) == set()


@pytest.mark.slow
def test_a_knob_dropped_from_dvc_yaml_is_named(reads, tmp_path):
    text = (ROOT / "dvc.yaml").read_text()
    (tmp_path / "dvc.yaml").write_text(text.replace("      - data.augment\n", "", 1))
    assert uncovered(reads, tmp_path / "dvc.yaml") == [
        "train reads data.augment, which dvc.yaml's train params do not list"]
