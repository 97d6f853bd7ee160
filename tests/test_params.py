import pytest
import yaml

from ablation.params import ParamsError, apply_overrides, load_params, train_params, validate


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_shipped_params_are_valid(default_params):
    assert validate(default_params)["model"]["arch"] == "resnet"


@pytest.mark.parametrize("override, fragment", [
    ("model.depht=34", "`model.depht`"),                            # unknown key
    ("model.depth=35", "18, 34, 50, 101, 152"),                     # impossible depth
    ("model.arch=resnet_cifar", "6n+2"),                            # 34 is not 6n+2
    ("model.residual=maybe", "true or false"),                      # wrong type
    ("model.shortcut=D", "'A', 'B', 'C'"),
    ("train.optimizer=rmsprop", "'sgd', 'adam'"),
    ("train.batch_size=0", ">= 1"),
    ("split.test_fraction=1.5", "<= 1"),
    ("data.source=s3", "'tfds', 'folder'"),
    ("train.per_dataset.cifar10.epochz=3", "train.per_dataset.cifar10.epochz"),
    ("train.step_boundaries=[0.75, 0.5]", "increasing"),
    ("train.weight_decay=1e-4", "`train.weight_decay`"),
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
                       ["model.arch=vgg", "model.depth=16", "model.residual=false"])["model"]["depth"] == 16


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
    params = validate(apply_overrides(default_params, ["model.residual=false", "train.seeds=[1, 2]",
                                                       "train.per_dataset.cifar10.epochs=3"]))
    assert params["model"]["residual"] is False and params["train"]["seeds"] == [1, 2]
    assert train_params(params, "cifar10")["epochs"] == 3
    assert train_params(params, "cats_vs_dogs")["batch_size"] == 64  # from params.yaml
    assert "per_dataset" not in train_params(params, "cifar10")


def test_study_grid_keys_must_exist(tmp_path, default_params):
    default_params["study"]["grid"] = {"model.width": [1, 2]}
    with pytest.raises(ParamsError, match="keys that exist"):
        load_params(write(tmp_path, default_params))


def test_exponent_floats_read_as_dvc_reads_them(default_params):
    params = validate(apply_overrides(default_params, ["train.learning_rate=1e-3", "model.weight_decay=5e-4"]))
    assert params["train"]["learning_rate"] == 0.001 and params["model"]["weight_decay"] == 0.0005


def test_params_choices_are_the_implementing_tables_keys():
    """params.py writes the allowed names out (so fetch and split need not import the
    model and training code); they must stay the names the code implements."""
    from ablation import inputs, models, recipe
    from ablation.params import ARCH_DEPTHS, SCHEMA, TRAIN_SCHEMA, VGG_MIN_SIDE
    choices = lambda check: set(check.choices)  # noqa: E731
    assert choices(SCHEMA["model"]["arch"]) == set(models.ARCHITECTURES)
    assert choices(SCHEMA["model"]["fc_init"]) == set(models.FC_INITIALIZERS)
    assert ARCH_DEPTHS == {"resnet": tuple(models.RESNET_STAGES), "vgg": tuple(models.VGG_BLOCKS)}
    assert VGG_MIN_SIDE == models.VGG_MIN_SIDE
    assert choices(TRAIN_SCHEMA["optimizer"]) == set(recipe.OPTIMIZERS)
    assert choices(TRAIN_SCHEMA["schedule"]) == set(recipe.SCHEDULES)
    assert choices(SCHEMA["data"]["augment"].inner) == set(inputs.AUGMENTATIONS)
