"""examples/your-own-network/convnext.py, the docs' own-network example: a builder
the suite accepts, under 1M parameters, whose two components change the network,
and whose model.keras loads back without custom objects (evaluate loads it so)."""
import importlib.util

import keras
import pytest

from ablation.nets import builders
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "your-own-network" / "convnext.py"


@pytest.fixture(scope="module")
def convnext():
    spec = importlib.util.spec_from_file_location("convnext_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.convnext


def test_its_options_are_the_two_components_and_the_size(convnext):
    assert list(builders.options_of(convnext)) == ["layer_scale", "kernel_size", "width", "blocks_per_stage"]


@pytest.mark.parametrize("layer_scale, kernel_size", [(True, 7), (False, 3)])
def test_each_arm_builds_under_a_million_parameters_and_loads_back(convnext, tmp_path, layer_scale, kernel_size):
    net = convnext((32, 32, 3), 10, layer_scale=layer_scale, kernel_size=kernel_size)
    assert 100_000 < net.count_params() < 1_000_000
    depthwise = [layer for layer in net.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert {layer.kernel_size for layer in depthwise} == ({(7, 7), (1, 1)} if layer_scale else {(3, 3)})
    net.save(tmp_path / "model.keras")
    assert keras.saving.load_model(tmp_path / "model.keras").count_params() == net.count_params()


def test_flops_count_depthwise_dense_on_maps_and_nested_models():
    from keras import layers

    from ablation.nets.anatomy import describe
    inner_input = keras.Input((8, 8, 4))
    inner = keras.Model(inner_input, layers.DepthwiseConv2D(3, padding="same")(inner_input))  # 8*8*4*9 MACs
    inputs = keras.Input((8, 8, 4))
    x = layers.Dense(6)(inner(inputs))  # at each of 64 positions: 4*6 MACs
    x = layers.SeparableConv2D(2, 3, padding="same")(x)  # 64 * (3*3*6 + 6*2) MACs
    net = keras.Model(inputs, x)
    assert describe(net)["flops"] == 2 * (8 * 8 * 4 * 9 + 64 * 4 * 6 + 64 * (9 * 6 + 6 * 2))
    assert describe(net)["weighted_layers"] == 3
