import re

import pytest
import yaml

from ablation.core.params import ParamsError, apply_overrides, from_dict, load_params
from tests.conftest import ROOT


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_shipped_arm_is_a_cpu_first_result_on_the_offline_data(default_params):
    """The README's first command runs the shipped arm: a small CIFAR ResNet for a few
    epochs, read from the offline archive tests and CI have beside the project."""
    params = from_dict(default_params)
    assert (params.model.arch, params.model.depth, params.datasets) == ("resnet_cifar", 20, ("cifar10",))
    assert params.train.epochs <= 3 and params.data.source == "folder"
    shipped = (ROOT.parent / "shared/datasets/cifar10-jpeg.tar.gz").resolve()  # ../shared may be a link
    assert (ROOT / params.data.paths["cifar10"]).resolve() == shipped


@pytest.mark.parametrize("override, fragment", [
    ("model.depht=34", "`model.depht` is an unknown key; did you mean `model.depth`?"),  # unknown key
    ("model.depth=35", "6n+2"),                                     # impossible depth
    ("model.arch=resnet", "18, 34, 50, 101, 152"),                  # 20 is not an ImageNet ResNet's depth
    ("model.residual=maybe", "true or false"),                      # wrong type
    ("model.shortcut=D", "'A', 'B', 'C'"),
    ("train.optimizer=rmsprop", "'sgd', 'adam'"),
    ("train.batch_size=0", ">= 1"),
    ("split.test_fraction=1.5", "<= 1"),
    ("data.source=s3", "'tfds', 'folder'"),
    ("train.per_dataset.cifar10.epochz=3", "train.per_dataset.cifar10.epochz"),
    ("train.step_boundaries=[0.75, 0.5]", "increasing"),
    ("train.weight_decay=1e-4", "`train.weight_decay` is an unknown key; did you mean `model.weight_decay`?"),
])
def test_bad_params_name_key_allowed_values_and_fix(tmp_path, default_params, override, fragment):
    with pytest.raises(ParamsError) as error:
        load_params(write(tmp_path, default_params), [override])
    message = str(error.value)
    assert fragment in message and "Fix:" in message


def test_vgg_must_be_plain(tmp_path, default_params):
    with pytest.raises(ParamsError, match="model.residual=false"):
        load_params(write(tmp_path, default_params), ["model.arch=vgg", "model.depth=16"])
    assert load_params(write(tmp_path, default_params),
                       ["model.arch=vgg", "model.depth=16", "model.residual=false"]).model.depth == 16


def test_missing_key_and_missing_file(tmp_path, default_params):
    del default_params["split"]["seed"]
    with pytest.raises(ParamsError, match="`split.seed`.*missing"):
        load_params(write(tmp_path, default_params))
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nothing.yaml")


def test_malformed_yaml_and_override(tmp_path, default_params):
    path = tmp_path / "params.yaml"
    path.write_text("model: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)
    with pytest.raises(ParamsError, match="key=value"):
        apply_overrides(default_params, ["model.depth"])


def test_overrides_parse_yaml_values_and_per_dataset_merge(default_params):
    params = from_dict(default_params, ["model.residual=false", "train.seeds=[1, 2]",
                                        "datasets=[cifar10, cats_vs_dogs]", "train.per_dataset.cifar10.epochs=3"])
    assert params.model.residual is False and params.train.seeds == (1, 2)
    assert params.for_dataset("cifar10").train.epochs == 3
    assert params.for_dataset("cats_vs_dogs").train.batch_size == 64  # from params.yaml
    assert params.for_dataset("cifar10").train.per_dataset == {}


def test_study_grid_keys_must_exist(tmp_path, default_params):
    default_params["study"]["grid"] = {"model.width": [1, 2]}
    with pytest.raises(ParamsError, match="keys that exist"):
        load_params(write(tmp_path, default_params))


def test_exponent_floats_read_as_dvc_reads_them(default_params):
    params = from_dict(apply_overrides(default_params, ["train.learning_rate=1e-3", "model.weight_decay=5e-4"]))
    assert params.train.learning_rate == 0.001 and params.model.weight_decay == 0.0005


def test_every_choice_is_a_key_of_the_table_that_implements_it():
    """Each choice knob names its table; the allowed values are exactly its keys."""
    import dataclasses
    import importlib

    from ablation.core import params as p
    tables = {}
    for section in (p.DataParams, p.ModelParams, p.TrainParams):
        for knob in dataclasses.fields(section):
            check = knob.metadata["knob"].check
            check = getattr(check, "inner", check)  # a per-dataset mapping's values
            if hasattr(check, "table"):
                module, name = check.table
                table = getattr(importlib.import_module(f"ablation.{module}"), name)
                tables[f"{section.__name__}.{knob.name}"] = name
                assert all(check(key) is None for key in table), knob.name
                assert check("no-such-choice") is not None, knob.name
    assert tables == {"DataParams.source": "SOURCES", "DataParams.augment": "AUGMENTATIONS",
                      "ModelParams.arch": "ARCHITECTURES", "ModelParams.shortcut": "SHORTCUT_PROJECTS",
                      "ModelParams.stem": "STEMS", "ModelParams.fc_init": "FC_INITIALIZERS",
                      "ModelParams.block": "BLOCK_CHOICES", "ModelParams.unit": "UNITS", "ModelParams.norm": "NORMS",
                      "ModelParams.shortcut_form": "SHORTCUT_FORMS",
                      "TrainParams.optimizer": "OPTIMIZERS", "TrainParams.schedule": "SCHEDULES",
                      "TrainParams.distribute": "DISTRIBUTIONS", "TrainParams.mixed_precision": "POLICIES"}


def test_a_new_table_entry_is_a_valid_choice(monkeypatch, default_params):
    """The schema is built from the tables: an optimizer added to recipe.OPTIMIZERS
    is accepted without touching params.py, and depths come from models.ARCHITECTURES."""
    from ablation.nets import models
    from ablation.training import recipe
    with pytest.raises(ParamsError, match="'sgd', 'adam'"):
        from_dict(default_params, ["train.optimizer=nesterov"])
    monkeypatch.setitem(recipe.OPTIMIZERS, "nesterov", recipe.OPTIMIZERS["sgd"])
    assert from_dict(default_params, ["train.optimizer=nesterov"]).train.optimizer == "nesterov"
    monkeypatch.setitem(models.ARCHITECTURES, "resnet", models.ARCHITECTURES["resnet"]._replace(
        depths=lambda block: "18", has_depth=lambda depth, block: depth == 18))
    with pytest.raises(ParamsError, match="18 for resnet"):
        from_dict(default_params, ["model.arch=resnet", "model.depth=34"])


TRICKY = ["010", "0x10", "0o17", "1_000", ".nan", "nan", "inf", ".inf", "-.inf", "1e-4", "1.0e-4", "5", "[0,1]",
          "true", "True", "yes", "on", "off", "null", "0.1", "+5", "-0", "1.", "abc", "'5'", "1:30", "08", "-010"]


@pytest.mark.parametrize("literal", TRICKY)
def test_every_value_means_what_dvc_will_read(tmp_path, literal):
    """A params or preset file read as DVC's YAML reader reads it, and an -S value as DVC's
    own override parser writes it into params.yaml for the experiment to read."""
    from dvc.utils.hydra import apply_overrides as dvc_apply_overrides
    from dvc.utils.serialize import load_yaml

    from ablation.core.yaml_text import parse_override_value, parse_yaml_text
    path = tmp_path / "params.yaml"
    path.write_text(f"k: {literal}\n")
    assert repr(parse_yaml_text(path.read_text(), "file")["k"]) == repr(load_yaml(path)["k"])
    path.write_text("k: 0\n")
    dvc_apply_overrides(path, [f"k={literal}"])
    assert repr(parse_override_value(literal, "-S")) == repr(load_yaml(path)["k"])


@pytest.mark.parametrize("override, message", [
    ("train.epochs=010", "`train.epochs` is '010'; allowed: an integer"),  # DVC writes the string '010'
    ("train.batch_size=0x10", "`train.batch_size` is '0x10'; allowed: an integer"),
    ("data.max_file_mb=nan", "`data.max_file_mb` is nan; allowed: a finite number"),
    ("split.val_fraction=.nan", "`split.val_fraction` is '.nan'; allowed: a finite number"),
    ("train.learning_rate=inf", "`train.learning_rate` is inf; allowed: a finite number"),
    ("train.step_boundaries=[0.5,nan]", "an increasing list of fractions"),
    ("train.seeds=[0,0]", "each once"),
    ("datasets=[cifar10,cifar10]", "each once"),
    ("model.depth=20,32", "several values (a sweep)"),
])
def test_numbers_dvc_would_read_otherwise_and_non_finite_ones_are_refused(override, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params(ROOT / "params.yaml", [override])


def test_a_repeated_grid_key_is_refused():
    from ablation.study import grid
    with pytest.raises(ParamsError, match="--grid names model.depth more than once"):
        grid.load_study_params(ROOT / "params.yaml", [], None, ["model.depth=20", "model.depth=32"])
