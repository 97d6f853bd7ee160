"""A user's own network as an arm (nets/builders.py): `model.arch: module:function`,
its keyword-only options as `model.options.NAME`, checked when params load."""
import sys
import textwrap

import pytest

from ablation.core.params import ParamsError, load_params
from ablation.nets import builders, models
from ablation.study import grid
from tests.conftest import BUILDER, ROOT, assert_clean_error, stage


@pytest.fixture
def project(tmp_path, monkeypatch, request):
    """A project folder holding a builder module of its own name (imports are cached by name)."""
    module = f"net_{request.node.name.split('[')[0][5:40]}_{abs(hash(request.node.name)) % 10**6}"
    (tmp_path / f"{module}.py").write_text(BUILDER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return module


def params(*overrides):
    return load_params(ROOT / "params.yaml", list(overrides))


def test_a_builder_is_an_arm_with_its_options_and_their_defaults(project):
    loaded = params(f"model.arch={project}:tiny", "model.options.width=4", "model.options.kernel=7")
    net = models.build_model(loaded.model, (16, 16, 3), 10)
    assert net.count_params() == 16 * 3 * 4 * 49 // 16 + 4 + 4 * 10 + 10  # conv 7x7x3x4 + bias, dense
    assert models.model_name(loaded.model) == "tiny"
    record = builders.identity(loaded.model.arch, loaded.model.options)
    assert record["options"] == {"width": 4, "layer_scale": True, "kernel": 7, "drop": 0.0, "label": "x"}
    before = record["source_sha256"]
    with open(f"{project}.py", "a") as module:  # an edited builder is another identity
        module.write("\n# edited\n")
    assert builders.identity(loaded.model.arch, loaded.model.options)["source_sha256"] != before


@pytest.mark.parametrize("override, message", [
    ("model.options.widht=4", "did you mean `model.options.width`?"),
    ("model.options.width=wide", "`model.options.width` is 'wide'; allowed: an integer"),
    ("model.options.width=true", "allowed: an integer"),
    ("model.options.layer_scale=1", "allowed: true or false"),
    ("model.options.kernel=5", "allowed: one of 3, 7"),
    ("model.options.drop=false", "allowed: a finite number"),
    ("model.options.label=3", "allowed: a string"),
])
def test_an_option_that_does_not_fit_the_builder_is_refused(project, override, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace("?", r"\?")):
        params(f"model.arch={project}:tiny", override)


@pytest.mark.parametrize("function, message", [
    ("needs_depth", "`model.options.depth` is None; allowed: a value (the builder gives it no default)"),
    ("one_argument", "allowed: a function (input_shape, num_classes, *, options...)"),
    ("nothing", "has no function 'nothing' (it has tiny, needs_depth, broken, not_a_model, one_argument)"),
])
def test_a_builder_that_cannot_be_called_so_is_refused_when_params_load(project, function, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        params(f"model.arch={project}:{function}")


def test_a_builder_that_raises_or_returns_no_model_is_refused_naming_it(project):
    for function, message in (("broken", "raised RuntimeError: boom. Fix: correct the builder"),
                              ("not_a_model", "returned int, not a keras.Model")):
        loaded = params(f"model.arch={project}:{function}")
        with pytest.raises(ParamsError, match=message):
            models.build_model(loaded.model, (16, 16, 3), 10)


def test_a_module_that_does_not_import_or_lies_outside_is_refused(project, tmp_path_factory):
    with pytest.raises(ParamsError, match="module no_such_module cannot be found|no module no_such_module"):
        params("model.arch=no_such_module:tiny")
    (builders.Path(f"{project}_bad.py")).write_text("import no_such_dependency\n")
    with pytest.raises(ParamsError, match=f"module {project}_bad does not import \\(ModuleNotFoundError"):
        params(f"model.arch={project}_bad:tiny")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / f"{project}_out.py").write_text(BUILDER)
    sys.path.append(str(elsewhere))
    with pytest.raises(ParamsError, match="outside the project and the installed packages"):
        params(f"model.arch={project}_out:tiny")
    with pytest.raises(ParamsError, match="outside the project"):
        params("model.arch=json:loads")  # the standard library is neither


def test_options_belong_to_a_builder_and_name_its_arms(project):
    with pytest.raises(ParamsError, match="`model.options` is \\{'width': 4\\}; allowed: \\{\\} for resnet_cifar"):
        params("model.options.width=4")
    study = grid.load_study_params(ROOT / "params.yaml", [f"model.arch={project}:tiny", "model.options.width=4"],
                                   {"model.options.kernel": [3, 7]}, [])
    assert [arm.name for arm in grid.arms(study)] == ["tiny-kernel3", "tiny-kernel7"]


def test_a_stage_refuses_a_mistyped_option_in_one_line(project_copy):
    (project_copy / "mynet.py").write_text(textwrap.dedent(BUILDER))
    result = stage(project_copy, "describe", "-S", "model.arch=mynet:tiny", "-S", "model.options.kernal=7", check=False)
    assert_clean_error(result, "did you mean `model.options.kernel`?")
    described = stage(project_copy, "describe", "-S", "model.arch=mynet:tiny", "-S", "model.options.kernel=7")
    assert "| cifar10   | 32x32x3 | tiny " in described.stdout
