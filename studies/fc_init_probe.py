"""Initial loss and image-independent logit offsets at init, per classifier init
(model.fc_init): the measurement behind params.yaml's choice. Run from a project with
CIFAR-10 fetched and split: python -m studies.fc_init_probe"""
import keras
import numpy as np
import tensorflow as tf

from ablation.core.declarations import defaults
from ablation.core.sections import ModelParams
from ablation.nets import models
from ablation.training import inputs, recipe

cached, rows = inputs.load_split("data/fetched/cifar10", "data/split/cifar10", "train", 32)
mean, var = recipe.pixel_moments(*inputs.pixel_sums(cached))
images, labels = next(iter(inputs.evaluation_batches(cached.shuffle(50000, seed=0), len(rows), 1000)))
base = {**defaults("model"), "arch": "resnet_cifar", "shortcut": "A", "stem": "auto", "weight_decay": 1e-4,
        "dense_units": 1, "dropout": 0.0}
print("arm fc_init seed initial_loss logit_offset_std feature_norm")
for depth in (20, 56):
    for residual in (True, False):
        for fc in ("he_normal", "linear_default"):
            for seed in (0, 1):
                keras.utils.set_random_seed(seed)
                arm = ModelParams(**{**base, "depth": depth, "residual": residual, "fc_init": fc})
                net = models.build_model(arm, (32, 32, 3), 10)
                model = recipe.with_normalization(net, mean, var)

                inner = model.layers[-1]
                feat = keras.Model(inner.inputs, inner.get_layer("fc").output)
                x = model.get_layer("normalize")(model.get_layer("to_float")(images))
                logits = feat(x, training=True).numpy()
                p = tf.nn.softmax(logits).numpy()
                loss = -np.log(p[np.arange(len(labels)), labels.numpy()] + 1e-12).mean()
                print(models.model_name(arm), fc, seed,
                      f"{loss:.2f}", f"{logits.mean(0).std():.2f}", f"{np.abs(logits).mean():.2f}", flush=True)
