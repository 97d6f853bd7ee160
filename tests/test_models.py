import dataclasses

import numpy as np
import pytest

from ablation.models import RESNET_STAGES, VGG_BLOCKS, build_model, describe
from ablation.params import ModelParams, ParamsError

# torchvision's published trainable parameter counts (224x224x3, 1000 classes).
TORCHVISION = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# The paper's Table 6 (CIFAR-10, option A).
PAPER_CIFAR = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}


def arm(model_params, **changes):
    return dataclasses.replace(model_params, **changes)


@pytest.fixture(scope="module")
def imagenet_resnets():
    base = {"arch": "resnet", "residual": True, "shortcut": "B", "stem": "auto", "fc_init": "linear_default", "weight_decay": 1e-4,
            "dense_units": 4096, "dropout": 0.5}
    return {d: describe(build_model(ModelParams(**base, depth=d), (224, 224, 3), 1000)) for d in TORCHVISION}


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
    small = build_model(arm(model_params, depth=18), (32, 32, 3), 10)
    large = build_model(arm(model_params, depth=18), (128, 128, 3), 10)
    assert small.get_layer("avg_pool").input.shape[1] == 4      # 32 / 8: 3x3 stride-1 stem
    assert large.get_layer("avg_pool").input.shape[1] == 4      # 128 / 32: 7x7/2 stem + max-pool
    forced = build_model(arm(model_params, depth=18, stem="small"), (64, 64, 3), 10)
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
