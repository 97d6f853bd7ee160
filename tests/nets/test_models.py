import dataclasses

import numpy as np
import pytest

from ablation.core.declarations import defaults
from ablation.core.params import ParamsError
from ablation.core.sections import ModelParams
from ablation.nets.anatomy import describe, response_layers
from ablation.nets.models import RESNET_STAGES, VGG_BLOCKS, build_model
from ablation.nets.units import BLOCKS, SHORTCUT_FORMS, UNITS

# torchvision's published trainable parameter counts (224x224x3, 1000 classes).
TORCHVISION = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# The paper's Table 6 (CIFAR-10, option A).
PAPER_CIFAR = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}


def arm(model_params, **changes):
    return dataclasses.replace(model_params, **changes)


@pytest.fixture(scope="module")
def imagenet_resnets():
    base = {**defaults("model"), "arch": "resnet", "residual": True, "shortcut": "B", "stem": "auto",
            "fc_init": "linear_default", "weight_decay": 1e-4, "dense_units": 4096, "dropout": 0.5}
    return {d: describe(build_model(ModelParams(**{**base, "depth": d}), (224, 224, 3), 1000)) for d in TORCHVISION}


@pytest.mark.parametrize("depth", sorted(TORCHVISION))
def test_imagenet_resnet_matches_torchvision_exactly(imagenet_resnets, depth):
    info = imagenet_resnets[depth]
    assert info["trainable_params"] == TORCHVISION[depth]
    assert info["weighted_layers"] == depth
    assert info["residual_additions"] == sum(RESNET_STAGES[depth][1])


def test_resnet18_flops_match_torchvision(imagenet_resnets):
    # torchvision lists 1.81 GFLOPS for ResNet-18, counting multiply-adds.
    assert imagenet_resnets[18]["flops"] / 2 == pytest.approx(1.814e9, rel=0.01)


@pytest.mark.parametrize("depth", sorted(PAPER_CIFAR))
def test_cifar_resnet_matches_paper_table6(model_params, depth):
    net = build_model(arm(model_params, arch="resnet_cifar", depth=depth, shortcut="A"), (32, 32, 3), 10)
    info = describe(net)
    assert abs(info["trainable_params"] - PAPER_CIFAR[depth]) / PAPER_CIFAR[depth] < 0.02
    assert info["weighted_layers"] == depth
    assert info["residual_additions"] == 3 * (depth - 2) // 6


@pytest.mark.parametrize("arch, depth, shape", [
    ("resnet_cifar", 20, (32, 32, 3)), ("resnet_cifar", 56, (32, 32, 3)),
    ("resnet", 18, (32, 32, 3)), ("resnet", 34, (64, 64, 3)), ("resnet", 50, (32, 32, 3)),
    ("resnet", 101, (32, 32, 3)), ("resnet", 152, (32, 32, 3)),
])
def test_plain_twin_is_the_same_net_without_additions(model_params, arch, depth, shape):
    residual = describe(build_model(arm(model_params, arch=arch, depth=depth, shortcut="A"), shape, 10))
    plain = describe(build_model(arm(model_params, arch=arch, depth=depth, shortcut="A", residual=False), shape, 10))
    assert residual["weighted_layers"] == plain["weighted_layers"] == depth
    assert residual["residual_additions"] > 0 and plain["residual_additions"] == 0
    assert residual["trainable_params"] == plain["trainable_params"]  # option A shortcuts have no parameters
    assert plain["model"].startswith("plain")


def test_shortcut_options_order_parameters(model_params):
    counts = {s: describe(build_model(arm(model_params, arch="resnet_cifar", depth=20, shortcut=s), (32, 32, 3), 10))
              ["trainable_params"] for s in "ABC"}
    assert counts["A"] < counts["B"] < counts["C"]
    plain_b = describe(build_model(arm(model_params, arch="resnet_cifar", depth=20, shortcut="B", residual=False),
                                   (32, 32, 3), 10))
    assert plain_b["trainable_params"] == counts["A"]  # the plain twin drops B's projections


@pytest.mark.parametrize("depth", sorted(VGG_BLOCKS))
def test_vgg_depths(model_params, depth):
    net = build_model(arm(model_params, arch="vgg", depth=depth, residual=False, dense_units=64), (32, 32, 3), 10)
    info = describe(net)
    assert info["weighted_layers"] == depth and info["residual_additions"] == 0


def test_stem_choice_follows_image_size(model_params):
    resnet18 = arm(model_params, arch="resnet", depth=18, shortcut="B")
    small = build_model(resnet18, (32, 32, 3), 10)
    large = build_model(resnet18, (128, 128, 3), 10)
    assert small.get_layer("avg_pool").input.shape[1] == 4      # 32 / 8: 3x3 stride-1 stem
    assert large.get_layer("avg_pool").input.shape[1] == 4      # 128 / 32: 7x7/2 stem + max-pool
    forced = build_model(arm(resnet18, stem="small"), (64, 64, 3), 10)
    assert forced.get_layer("avg_pool").input.shape[1] == 8


@pytest.mark.parametrize("residual", [True, False])
def test_forward_is_finite_and_few_steps_lower_the_loss(model_params, residual):
    import keras
    keras.utils.set_random_seed(0)
    net = build_model(arm(model_params, arch="resnet_cifar", depth=14, shortcut="A", residual=residual),
                      (32, 32, 3), 10)
    images = np.random.default_rng(0).normal(size=(32, 32, 32, 3)).astype("float32")
    labels = np.arange(32) % 10
    out = net(images, training=False).numpy()
    assert out.shape == (32, 10) and np.isfinite(out).all()
    net.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    before = net.evaluate(images, labels, verbose=0)
    net.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    assert net.evaluate(images, labels, verbose=0) < before


def test_bad_model_params_are_rejected(model_params):
    # Validated once, when params load (build_model trusts what it is given).
    with pytest.raises(ParamsError, match="11, 13, 16, 19 for vgg"):
        ModelParams.parse(dataclasses.asdict(arm(model_params, arch="vgg", depth=20, residual=False)))
    with pytest.raises(ParamsError, match="6n\\+2"):
        ModelParams.parse(dataclasses.asdict(arm(model_params, arch="resnet_cifar", depth=22)))
    with pytest.raises(ValueError, match="at least 32x32"):
        build_model(arm(model_params, arch="vgg", depth=11, residual=False), (16, 16, 3), 10)


def cifar(model_params, **changes):
    return arm(model_params, **{"arch": "resnet_cifar", "shortcut": "A", "depth": 20, **changes})


def measured(net, response):
    """The layer a Response marks: the one built right before it, whose output it passes on."""
    return net.layers[net.layers.index(response) - 1]


@pytest.mark.parametrize("block, depth", [("basic", 14), ("bottleneck", 11)])
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_every_unit_builds_with_its_plain_twin_the_same_layers_without_additions(model_params, unit, block, depth):
    residual = build_model(cifar(model_params, unit=unit, block=block, depth=depth), (32, 32, 3), 10)
    plain = build_model(cifar(model_params, unit=unit, block=block, depth=depth, residual=False), (32, 32, 3), 10)
    blocks = (depth - 2) // (3 * len(BLOCKS[block]))
    r, p = describe(residual), describe(plain)
    assert r["weighted_layers"] == p["weighted_layers"] == depth
    assert r["residual_additions"] == 3 * blocks and p["residual_additions"] == 0
    assert r["trainable_params"] == p["trainable_params"]
    # Same layers in the same order, less the additions (and option A's zero-padding).
    kinds = lambda net: [type(layer).__name__ for layer in net.layers if type(layer).__name__ not in  # noqa: E731
                         ("Add", "ZeroPadShortcut")]
    assert kinds(residual) == kinds(plain)
    # One response per 3x3 convolution (the stem's and one or two per block), each
    # after the BN that follows its convolution where one does.
    responses = response_layers(residual)
    assert len(responses) == 1 + 3 * blocks * sum(k == 3 for k, _ in BLOCKS[block])
    steps_after = {"original": "BatchNormalization", "full_preactivation": "Conv2D"}
    if unit in steps_after:  # the last 3x3 of a basic unit: BN before the addition, or the bare convolution
        last = [layer for layer in responses if layer.name.startswith("stage3_block")][-1]
        assert type(measured(residual, last)).__name__ == (steps_after[unit] if block == "basic"
                                                          else "BatchNormalization")
    preactivation = UNITS[unit].before != ()
    assert ("final_bn" in [layer.name for layer in residual.layers]) == preactivation


def test_cifar_bottleneck_resnet164_has_the_papers_size(model_params):
    info = describe(build_model(cifar(model_params, block="bottleneck", depth=164, shortcut="B",
                                      unit="full_preactivation"), (32, 32, 3), 10))
    assert info["weighted_layers"] == 164 and info["residual_additions"] == 54
    assert info["trainable_params"] == pytest.approx(1.7e6, rel=0.03)  # He et al. 2016, Table 2: 1.7M


@pytest.mark.parametrize("block, depth", [("basic", 14), ("bottleneck", 11)])
@pytest.mark.parametrize("form", sorted(SHORTCUT_FORMS))
def test_every_shortcut_form_builds_and_trains_a_step(model_params, form, block, depth):
    net = build_model(cifar(model_params, shortcut_form=form, block=block, depth=depth), (32, 32, 3), 10)
    info, plain = describe(net), describe(build_model(cifar(model_params, block=block, depth=depth), (32, 32, 3), 10))
    assert info["residual_additions"] == 3 * (depth - 2) // (3 * len(BLOCKS[block]))
    if form in ("exclusive_gating", "shortcut_only_gating", "conv1x1"):
        assert info["trainable_params"] > plain["trainable_params"]  # gates or projections
    else:
        assert info["trainable_params"] == plain["trainable_params"]
    net.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = net.train_on_batch(np.zeros((4, 32, 32, 3), "float32"), np.arange(4))
    assert np.isfinite(loss)
    if form.endswith("gating"):  # b_g sets the gate: sigmoid(-6) keeps the shortcut nearly whole at the start
        bias = net.get_layer("stage1_block1_shortcut_gate_conv").bias.numpy()
        assert np.all(bias == model_params.gate_bias)


def test_without_a_norm_there_is_no_batch_normalization(model_params):
    for params in (cifar(model_params, norm="none", unit="full_preactivation"),
                   arm(model_params, arch="vgg", depth=11, residual=False, norm="none", dense_units=16)):
        net = build_model(params, (32, 32, 3), 10)
        assert not [layer for layer in net.layers if "BatchNormalization" in type(layer).__name__]
        assert all(layer.use_bias for layer in net.layers if type(layer).__name__ == "Conv2D")
        # Each response is marked right after its convolution: no norm follows it.
        assert response_layers(net) and all(type(measured(net, r)).__name__ == "Conv2D" for r in response_layers(net))


@pytest.mark.parametrize("arch, depth", [("resnet_cifar", 20), ("vgg", 11)])
def test_group_norm_is_one_table_entry_and_takes_the_batch_norms_places(model_params, arch, depth):
    """NORMS["group"]: a GroupNormalization of model.norm_groups groups wherever the
    batch norm stands, the same layer responses, and a net that trains."""
    changes = {"arch": arch, "depth": depth, **({"residual": False, "dense_units": 16} if arch == "vgg" else {})}
    batch = build_model(arm(model_params, **changes), (32, 32, 3), 10)
    group = build_model(arm(model_params, **changes, norm="group", norm_groups=4), (32, 32, 3), 10)
    kinds = [type(layer).__name__ for layer in group.layers]
    assert "BatchNormalization" not in kinds
    assert kinds.count("GroupNormalization") == [type(layer).__name__ for layer in batch.layers].count(
        "BatchNormalization")
    assert all(layer.groups == 4 for layer in group.layers if type(layer).__name__ == "GroupNormalization")
    assert [r.name for r in response_layers(group)] == [r.name for r in response_layers(batch)]
    assert not any(layer.use_bias for layer in group.layers if type(layer).__name__ == "Conv2D")
    group.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert np.isfinite(group.train_on_batch(np.random.default_rng(0).random((4, 32, 32, 3), "float32"), np.arange(4)))


@pytest.mark.parametrize("changes, message", [
    ({"arch": "resnet", "depth": 34, "block": "bottleneck"}, "`model.block` is 'bottleneck'; allowed: auto, basic"),
    ({"arch": "resnet_cifar", "depth": 22, "block": "bottleneck"}, "9n\\+2: 11, 20"),
    ({"arch": "resnet_cifar", "depth": 29, "block": "basic"}, "6n\\+2"),
    ({"arch": "vgg", "depth": 16, "residual": False, "unit": "full_preactivation"}, "no residual units"),
    ({"arch": "vgg", "depth": 16, "residual": False, "block": "basic"}, "`model.block` is 'basic'; allowed: auto for"),
    ({"arch": "resnet_cifar", "depth": 20, "residual": False, "shortcut_form": "exclusive_gating"},
     "identity for a plain twin"),
    ({"arch": "resnet_cifar", "depth": 20, "norm": "group", "norm_groups": 3}, "a divisor of 16 for resnet_cifar"),
])
def test_combinations_that_cannot_be_built_are_refused_at_load(model_params, changes, message):
    with pytest.raises(ParamsError, match=message):
        ModelParams.parse(dataclasses.asdict(arm(model_params, **changes)))


@pytest.mark.parametrize("block, depth", [("basic", 14), ("bottleneck", 11)])
def test_evaluate_measures_the_layer_responses_of_every_unit(model_params, block, depth):
    """evaluate.layer_responses (the evaluate stage's Fig. 7 numbers) on each unit's
    net, normalization in front as the saved arm has it: one finite std per 3x3 layer."""
    from ablation.training import evaluate, recipe
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3)).astype("uint8")
    for unit in UNITS:
        for residual in (True, False):
            net = build_model(cifar(model_params, unit=unit, block=block, depth=depth, residual=residual),
                              (32, 32, 3), 10)
            model = recipe.with_normalization(net, np.zeros((32, 32, 3), "float32"), np.ones(3, "float32"))
            responses = evaluate.layer_responses(model, [(images, np.zeros(4))])
            assert responses["layers"] == [layer.name for layer in response_layers(net)]
            assert len(responses["std"]) == 1 + 3 * (depth - 2) // (3 * len(BLOCKS[block])) * \
                sum(kernel == 3 for kernel, _ in BLOCKS[block])
            assert all(np.isfinite(v) and v > 0 for v in responses["std"]), (unit, residual)
