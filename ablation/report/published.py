"""The published CIFAR-10 test errors our study arms can be set beside: He et al.
2015 (Deep Residual Learning), Table 6, and He et al. 2016 (Identity Mappings in
Deep Residual Networks), Tables 1 and 2. Each row is the model params it needs
(with the paper's recipe: 64k iterations of batch 128, lr 0.1 divided by 10 at
32k and 48k, weight decay 1e-4); an arm matches the row whose every key it has.
The study report shows the match as its paper column."""
from __future__ import annotations

from typing import NamedTuple


class Published(NamedTuple):
    needs: dict  # model params (and `dataset`) the arm must have
    error: float | None  # test error in %; None: the paper reports that it failed to train
    source: str
    runs: str = ""  # what the number is of, where the paper says


# He et al. 2015, Table 6 (CIFAR-10, option A), test error %: single runs, except
# ResNet-110, whose 6.43 is the best of 5 runs; its mean (6.61 ± 0.16) is what a
# mean over seeds compares with.
PAPER_CIFAR10_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.61, 1202: 7.93}

_CIFAR = {"dataset": "cifar10", "arch": "resnet_cifar", "residual": True, "norm": "batch"}
_ORIGINAL = {**_CIFAR, "unit": "original", "shortcut_form": "identity"}
_RESNET110 = {**_CIFAR, "depth": 110, "block": "basic", "shortcut": "A"}

PUBLISHED = [
    *(Published({**_ORIGINAL, "depth": depth, "block": "basic", "shortcut": "A"}, error, "He 2015 Table 6",
                "mean of 5 runs (best 6.43)" if depth == 110 else "one run")
      for depth, error in PAPER_CIFAR10_ERROR.items()),
    # He et al. 2016, Table 1: shortcut forms on ResNet-110 (original units).
    Published({**_RESNET110, "unit": "original", "shortcut_form": "constant_scaling", "shortcut_scale": 0.5,
               "scale_residual": False}, None, "He 2016 Table 1"),
    Published({**_RESNET110, "unit": "original", "shortcut_form": "constant_scaling", "shortcut_scale": 0.5,
               "scale_residual": True}, 12.35, "He 2016 Table 1"),
    *(Published({**_RESNET110, "unit": "original", "shortcut_form": "exclusive_gating", "gate_bias": bias}, error,
                "He 2016 Table 1") for bias, error in ((0.0, None), (-6.0, 8.70))),
    *(Published({**_RESNET110, "unit": "original", "shortcut_form": "shortcut_only_gating", "gate_bias": bias},
                error, "He 2016 Table 1") for bias, error in ((0.0, 12.86), (-6.0, 6.91))),
    Published({**_RESNET110, "unit": "original", "shortcut_form": "conv1x1"}, 12.22, "He 2016 Table 1"),
    Published({**_RESNET110, "unit": "original", "shortcut_form": "dropout", "shortcut_dropout": 0.5}, None,
              "He 2016 Table 1"),
    # He et al. 2016, Table 2: units on ResNet-110 (basic) and ResNet-164 (bottleneck).
    *(Published({**_CIFAR, "shortcut_form": "identity", "unit": unit, "depth": depth, "block": block}, error,
                "He 2016 Table 2")
      for unit, errors in (("original", (6.61, 5.93)), ("bn_after_addition", (8.17, 6.50)),
                           ("relu_before_addition", (7.84, 6.14)), ("relu_only_preactivation", (6.71, 5.91)),
                           ("full_preactivation", (6.37, 5.46)))
      for (depth, block), error in zip(((110, "basic"), (164, "bottleneck")), errors)),
]


def published(model, block: str | None, dataset: str) -> Published | None:
    """The row arm `model` (sections.ModelParams; `block` resolved, models.block_of)
    matches on `dataset`, or None. Table 6's 110 row and Table 2's original
    ResNet-110 row are one number; the first listed wins."""
    have = {**{key: getattr(model, key) for key in type(model).__dataclass_fields__}, "block": block,
            "dataset": dataset}
    return next((row for row in PUBLISHED if all(have.get(k) == v for k, v in row.needs.items())), None)


def describe(row: Published | None) -> str:
    if row is None:
        return ""
    return f"{'fails to train' if row.error is None else f'{row.error:.2f}% error'} ({row.source})"


def arm_reference(row: Published) -> str:
    """The row as the arm report says it: accuracy first, with what the number is of."""
    if row.error is None:
        return f"paper ({row.source}): fails to train"
    runs = f", {row.runs}" if row.runs else ""
    return f"paper ({row.source}): {100 - row.error:.2f}% accuracy ({row.error}% error{runs})"


# ImageNet val, 10-crop top-1 error: Table 2 (plain nets; ResNets with option A)
# and Table 3 (ResNet-34 with options A/B/C; 50/101/152 with option B).
PAPER_IMAGENET_ERROR = {(18, False, None): (27.94, "Table 2"), (34, False, None): (28.54, "Table 2"),
                        (18, True, "A"): (27.88, "Table 2"), (34, True, "A"): (25.03, "Tables 2/3"),
                        (34, True, "B"): (24.52, "Table 3"), (34, True, "C"): (24.19, "Table 3"),
                        (50, True, "B"): (22.85, "Table 3"), (101, True, "B"): (21.75, "Table 3"),
                        (152, True, "B"): (21.43, "Table 3")}
