"""The recipe's tables: an optimizer owns its weight decay."""
import dataclasses

import keras
import numpy as np

from ablation.core.params import load_params
from ablation.nets.models import build_model
from ablation.training import recipe
from tests.conftest import ROOT


def test_adamw_decays_the_kernels_itself_and_the_net_carries_no_l2_term(model_params):
    """An optimizer that decays the weights itself gets a net without the L2 term:
    both would decay twice (Keras' AdamW also decays by default, 0.004)."""
    adamw, sgd = (load_params(ROOT / "params.yaml", [f"train.optimizer={name}", "train.schedule=constant"]).train
                  for name in ("adamw", "sgd"))
    model = dataclasses.replace(model_params, arch="resnet_cifar", depth=8, weight_decay=0.05)
    assert recipe.model_for(sgd, model) is model and build_model(model, (8, 8, 3), 2).losses  # SGD: the L2 term
    net = build_model(recipe.model_for(adamw, model), (8, 8, 3), 2)
    assert not net.losses
    optimizer = recipe.make_optimizer(adamw, 10, model.weight_decay)
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.weight_decay == 0.05
    weights = net.trainable_variables
    before = [keras.ops.convert_to_numpy(w).copy() for w in weights]
    optimizer.apply([keras.ops.zeros(w.shape) for w in weights], weights)  # zero gradients: only the decay moves
    for weight, old in zip(weights, before):
        new = keras.ops.convert_to_numpy(weight)
        if "kernel" in weight.path:  # decayed by learning rate x weight decay
            np.testing.assert_allclose(new, old * (1 - adamw.learning_rate * 0.05), rtol=1e-5, atol=1e-7)
        else:  # the norms' scales and shifts and the biases are not
            np.testing.assert_array_equal(new, old)
