"""Every dataset the suite knows, with the facts fetch, split, ingest and the dry
run read: its tfds name, the splits the study reads, its class names and its
train split's size. A new tfds dataset is one entry here (and its image_size and
augment in params.yaml); any other tfds name or image folder still works, its
facts read from tfds or the folder.

Offline, tfds' bundled metadata knows neither the split names nor the label names
(only "0".."9"), so the study's own are written here."""
from __future__ import annotations

from typing import NamedTuple

from ablation.core.errors import DataError

SOURCE_SPLITS = ("train", "test")  # the splits the split stage reads (splitting.split); a fetch reads no other


class Dataset(NamedTuple):
    tfds_name: str  # tfds' builder name
    classes: tuple[str, ...]  # label names, in label order
    splits: tuple[str, ...]  # tfds' splits of SOURCE_SPLITS it has (no test: split.test_fraction is held out)
    train_images: int  # tfds' train split size (the dry run's estimate before anything is fetched)


DATASETS = {
    "cifar10": Dataset("cifar10", ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                   "truck"), ("train", "test"), 50_000),
    "cats_vs_dogs": Dataset("cats_vs_dogs", ("cat", "dog"), ("train",), 23_262),
    # The cropped digits (32x32); its 531k-image `extra` split is not read.
    "svhn": Dataset("svhn_cropped", tuple("0123456789"), ("train", "test"), 73_257),
}


def tfds_name(dataset: str) -> str:
    return DATASETS[dataset].tfds_name if dataset in DATASETS else dataset


def class_names(dataset: str) -> list[str] | None:
    """The dataset's label names, or None when neither the table nor tfds knows it."""
    if dataset in DATASETS:
        return list(DATASETS[dataset].classes)
    import tensorflow_datasets as tfds  # here, so the study's datasets are read without TensorFlow
    try:
        builder = tfds.builder(dataset)
    except Exception:  # tfds raises DatasetNotFoundError and friends
        return None
    return list(builder.info.features["label"].names)


def tfds_splits(dataset: str, listed: list[str]) -> list[str]:
    """The tfds splits a fetch reads: of those the dataset has (`listed`, or the
    table's where offline tfds lists none), the ones the split stage uses."""
    known = DATASETS[dataset].splits if dataset in DATASETS else SOURCE_SPLITS
    names = [name for name in SOURCE_SPLITS if name in (listed or known)]
    if "train" not in names:
        raise DataError(f"tfds dataset {dataset!r} has no 'train' split (it has: {', '.join(listed) or 'none'}). "
                        f"Fix: read it from a folder instead, -S data.source=folder -S data.paths.{dataset}=<folder>.")
    return names
