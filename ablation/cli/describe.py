"""Print what the arm in params.yaml builds for each dataset: parameters, FLOPs,
weighted layers and residual additions. Usage: ablate describe [-S key=value]"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

from tabulate import tabulate

from ablation.core.layout import fetched_dir
from ablation.data.datasets import class_names
from ablation.data.shards import read_info
from ablation.nets import anatomy, models


def num_classes(dataset: str) -> int:
    names = class_names(dataset)
    return len(names) if names is not None else len(read_info(fetched_dir(dataset))["classes"])


def parser():
    return common.parser(__doc__)


def main():
    params = common.params_from(parser().parse_args())
    rows = []
    for dataset in params.datasets:
        size = params.for_dataset(dataset).image_size
        net = models.build_model(params.model, (size, size, 3), num_classes(dataset))
        info = anatomy.describe(net)
        rows.append([dataset, f"{size}x{size}x3", info["model"], f"{info['trainable_params']:,}",
                     f"{info['flops'] / 1e9:.3f}", info["weighted_layers"], info["residual_additions"]])
    print(tabulate(rows, headers=["dataset", "input", "model", "trainable params", "GFLOPs/image (fwd)",
                                  "weighted layers", "residual additions"], tablefmt="github"))
