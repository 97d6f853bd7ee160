"""Each knob is declared once (core/sections.py); params.yaml, dvc.yaml's `params:`,
the run fingerprint and the values old runs load with follow from the declarations,
and these tests fail where one does not."""
import shutil

import pytest
import yaml

from ablation.core import declarations
from ablation.core.knobs import STAGES
from ablation.core.params import from_dict, load_params
from ablation.core.sections import knobs
from tests.conftest import ROOT


def params_mismatches(dvc_yaml) -> list[str]:
    """Every stage whose `params:` in dvc.yaml differ from its declared knobs, each named."""
    problems = []
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        listed, wanted = set(stage.get("do", stage).get("params", [])), set(declarations.stage_params(name))
        if wanted - listed:
            problems.append(f"{name}: reads {sorted(wanted - listed)}, which dvc.yaml's {name} params do not list")
        if listed - wanted:
            problems.append(f"{name}: dvc.yaml lists {sorted(listed - wanted)}, which no declaration says it reads")
    return problems


def test_params_yaml_is_written_from_the_declarations():
    assert (ROOT / "params.yaml").read_text() == declarations.params_yaml_text(), \
        "regenerate it: python -m ablation.core.declarations --write"


def test_every_default_is_allowed_and_every_stage_is_dvc_s():
    for key, declared in knobs().items():
        assert declared.check(declared.default) is None, key
        assert set(declared.stages) <= set(STAGES), key
    assert set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]) == set(STAGES)


def test_dvc_yaml_params_follow_the_declarations():
    assert params_mismatches(ROOT / "dvc.yaml") == []
    text = (ROOT / "dvc.yaml").read_text()
    assert declarations.with_stage_params(text) == text, "regenerate: python -m ablation.core.declarations --write"


def test_a_new_project_s_pipeline_is_the_suite_s_without_its_code():
    written = (declarations.PROJECT_FILES / declarations.PIPELINE).read_text()
    assert written == declarations.project_dvc_yaml((ROOT / "dvc.yaml").read_text()), \
        "regenerate: python -m ablation.core.declarations --write"
    suite, project = (yaml.safe_load(text)["stages"] for text in ((ROOT / "dvc.yaml").read_text(), written))
    for name, stage in suite.items():
        body, theirs = stage.get("do", stage), project[name].get("do", project[name])
        assert {k: v for k, v in theirs.items() if k != "deps"} == {k: v for k, v in body.items() if k != "deps"}
        code = [d for d in body["deps"] if d.startswith("ablation/")]
        assert theirs.get("deps", []) == [*(["nets"] if name == "train" else []),
                                          *(d for d in body["deps"] if d not in code)], name
    for template in (ROOT / declarations.PLOT_TEMPLATES).glob("*.json"):
        assert (declarations.PROJECT_FILES / "plots" / template.name).read_text() == template.read_text()


def test_the_writer_restores_a_dropped_knob_and_leaves_the_rest(tmp_path):
    text = (ROOT / "dvc.yaml").read_text()
    dropped = text.replace("      - data.augment\n", "", 1).replace("        - data.limit\n", "", 1)
    (tmp_path / "dvc.yaml").write_text(dropped)
    declarations.write(tmp_path)
    assert (tmp_path / "dvc.yaml").read_text() == text
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()


def test_a_knob_dropped_from_a_stage_s_params_is_named(tmp_path):
    text = (ROOT / "dvc.yaml").read_text()
    assert "      - data.augment\n" in text
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "dvc.yaml").write_text(text.replace("      - data.augment\n", "", 1))
    assert params_mismatches(tmp_path / "dvc.yaml") == [
        "train: reads ['data.augment'], which dvc.yaml's train params do not list"]


def test_a_section_read_whole_is_listed_whole():
    # model: every knob shapes the net, so a model knob added later is tracked unlisted.
    assert "model" in declarations.stage_params("train")
    assert "train.seeds" not in declarations.stage_knobs("train")  # a seed's run is its own


def test_the_fingerprint_holds_every_knob_train_reads():
    run = load_params(ROOT / "params.yaml").for_dataset("cifar10")
    fingerprint = declarations.fingerprint(run)
    assert list(fingerprint) == declarations.stage_knobs("train")
    assert fingerprint["data.image_size"] == 32 and fingerprint["model.depth"] == 20


@pytest.mark.parametrize("key", [k for k, d in knobs().items() if d.before != "always"])
def test_a_params_file_from_before_a_knob_loads_with_its_old_value(key):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    section, name = key.split(".")
    del raw[section][name]
    assert getattr(getattr(from_dict(raw), section), name) == knobs()[key].before
