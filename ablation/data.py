"""Datasets: fetch (tfds or an image folder/archive) into TFRecord shards, split
them into a versioned manifest, and feed them to Keras through tf.data.

Fetched layout (`data/fetched/<dataset>/`):
    info.json                       classes, examples per source split, skipped files
    <split>-NNNNN.tfrecord          records {id, image (encoded bytes), label}
Split layout (`data/split/<dataset>/`):
    manifest.csv                    id,label,split for every example used
    counts.json                     examples per split and per class (a DVC metric)
"""
from __future__ import annotations

import csv
import functools
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import socket
import sys
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import tensorflow as tf

from ablation.ingest import DataError, ImageFolder, Progress, tfds_class_names

SHARD_SIZE = 10_000
SPLITS = ("train", "val", "test")
TFDS_CONNECT_TIMEOUT = 5.0  # seconds to wait for a tfds download host before naming the offline route
AUTOTUNE = tf.data.AUTOTUNE
# tfds' split names of the study's datasets, which offline tfds does not know either.
TFDS_SPLITS = {"cifar10": ["train", "test"], "cats_vs_dogs": ["train"]}


def read_info(fetched_dir: str | Path) -> dict:
    path = Path(fetched_dir) / "info.json"
    if not path.exists():
        raise DataError(f"{path} is missing. Fix: run the fetch stage first (`dvc repro fetch`).")
    return json.loads(path.read_text())


# --- TFRecord writing -----------------------------------------------------------

def _example(example_id: str, image: bytes, label: int) -> bytes:
    feature = {
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example_id.encode()])),
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class ShardWriter:
    """Writes `<split>-NNNNN-of-COUNT.tfrecord` shards of up to SHARD_SIZE examples,
    in input order. Each shard is written under a `.partial` name and renamed to
    carry its example count only once complete, so `split` can tell a full shard
    from one cut short."""

    def __init__(self, out_dir: Path):
        self.out_dir, self.counts, self.writers = out_dir, Counter(), {}

    def _partial(self, split: str, shard: int) -> Path:
        return self.out_dir / f"{split}-{shard:05d}.partial"

    def write(self, split: str, example_id: str, image: bytes, label: int):
        shard = self.counts[split] // SHARD_SIZE
        if (split, shard) not in self.writers:
            self.writers[(split, shard)] = tf.io.TFRecordWriter(str(self._partial(split, shard)))
        self.writers[(split, shard)].write(_example(example_id, image, label))
        self.counts[split] += 1

    def close(self):
        for (split, shard), writer in self.writers.items():
            writer.close()
            count = min(SHARD_SIZE, self.counts[split] - shard * SHARD_SIZE)
            self._partial(split, shard).rename(self.out_dir / shard_name(split, shard, count))


def shard_name(split: str, shard: int, count: int) -> str:
    return f"{split}-{shard:05d}-of-{count}.tfrecord"


def shard_split_and_count(path: Path) -> tuple[str, int]:
    """(source split, examples) from a shard's name; DataError for a foreign name."""
    parts = path.name.removesuffix(".tfrecord").split("-")
    if len(parts) != 4 or parts[2] != "of" or not parts[3].isdigit():
        raise DataError(f"{path} is not a shard this project wrote (no example count in its name). "
                        "Fix: re-run the fetch stage (`dvc repro -f fetch`).")
    return parts[0], int(parts[3])


def fetch_folder(dataset: str, path: str | Path, out_dir: Path) -> dict:
    folder = ImageFolder(dataset, path)
    writer, formats = ShardWriter(out_dir), Counter()
    for image in folder:
        writer.write(image.split, image.name, image.data, image.label)
        formats[image.format] += 1
    writer.close()
    return {"classes": folder.classes, "splits": dict(sorted(writer.counts.items())),
            "formats": dict(sorted(formats.items())), "skipped": len(folder.skipped),
            "skipped_files": folder.skipped[:100], "ignored": len(folder.ignored), "ignored_files": folder.ignored[:100]}


def _download_hosts(builder) -> list[str]:
    """Hosts named in the builder's source (its download URLs, homepage, ...)."""
    try:
        source = inspect.getsource(sys.modules[type(builder).__module__])
    except (OSError, TypeError, KeyError):
        return []
    return sorted({urlparse(url).hostname for url in re.findall(r"https?://[^\s'\"]+", source)} - {None})


def _reachable(hosts: list[str], timeout: float = TFDS_CONNECT_TIMEOUT) -> bool:
    """Whether a TCP connection opens to any of the hosts within `timeout` seconds."""
    for host in hosts:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return True
        except OSError:
            continue
    return not hosts


def _offline_fix(dataset: str) -> str:
    return (f"Fix: use the offline route, -S data.source=folder -S data.paths.{dataset}=<image folder or archive> "
            "(README: Offline data), or put a prepared tfds copy in TFDS_DATA_DIR.")


def fetch_tfds(dataset: str, out_dir: Path) -> dict:
    import tensorflow_datasets as tfds
    if tfds_class_names(dataset) is None:
        raise DataError(f"tfds does not know dataset {dataset!r}. Fix: use -S data.source=folder "
                        f"-S data.paths.{dataset}=<image folder or archive>.")
    builder = tfds.builder(dataset)
    names = sorted(builder.info.splits.keys()) or TFDS_SPLITS.get(dataset, ["train", "test"])
    options = dict(split=names, with_info=True, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    try:  # a prepared copy (TFDS_DATA_DIR) needs no network
        loaded, info = tfds.load(dataset, download=False, **options)
    except Exception:  # tfds raises AssertionError or DatasetNotFoundError when it is not prepared
        # tfds retries an unreachable host for minutes; a short connection check says so in seconds.
        hosts = _download_hosts(builder)
        if not _reachable(hosts):
            raise DataError(f"tfds must download {dataset}, but none of its hosts ({', '.join(hosts)}) answered "
                            f"within {TFDS_CONNECT_TIMEOUT:.0f} s: no network here? {_offline_fix(dataset)}") from None
        try:
            loaded, info = tfds.load(dataset, **options)
        except Exception as error:
            raise DataError(f"tfds could not download and prepare {dataset} ({type(error).__name__}: "
                            f"{str(error)[:300]}). {_offline_fix(dataset)}") from error
    splits = dict(zip(names, loaded))
    id_key = next((k for k in ("id", "image/filename") if k in info.features), None)
    writer, progress = ShardWriter(out_dir), Progress(f"fetch {dataset} from tfds")
    for split in sorted(splits):
        for index, example in enumerate(tfds.as_numpy(splits[split])):
            example_id = example[id_key].decode() if id_key else f"{split}_{index}"
            writer.write(split, example_id, example["image"], int(example["label"]))
            progress.step()
    writer.close()
    progress.done()
    return {"classes": tfds_class_names(dataset), "splits": dict(sorted(writer.counts.items())),
            "skipped": 0, "skipped_files": [], "ignored": 0, "ignored_files": []}


def fetch(dataset: str, data_params: dict, out_dir: str | Path) -> dict:
    """Writes the dataset's shards and info.json into out_dir; returns the info.
    Everything is built in a staging directory beside out_dir, checked, then
    swapped in: a failed or interrupted fetch leaves the previous output (or
    nothing), never a partial one."""
    out_dir = Path(out_dir)
    staging, previous = out_dir.with_name(f".{out_dir.name}.staging"), out_dir.with_name(f".{out_dir.name}.previous")
    if previous.exists() and not out_dir.exists():  # a swap was interrupted: restore the old output
        previous.rename(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if data_params["source"] == "folder":
            path = (data_params["paths"] or {}).get(dataset)
            if not path:
                raise DataError(f"data.source is folder but data.paths.{dataset} is not set. "
                                f"Fix: -S data.paths.{dataset}=<image folder or archive>.")
            # Relative paths are from the project root. DVC_ROOT names it even when DVC's
            # queue runs this stage in a temporary copy of the project.
            info = fetch_folder(dataset, Path(os.environ.get("DVC_ROOT", ".")) / path, staging)
        else:
            info = fetch_tfds(dataset, staging)
        info = {"dataset": dataset, "source": data_params["source"], **info}
        (staging / "info.json").write_text(json.dumps(info, indent=2) + "\n")
        read_labels(staging)  # every shard complete and counted as info.json says
        shutil.rmtree(previous, ignore_errors=True)
        if out_dir.exists():
            out_dir.rename(previous)
        staging.rename(out_dir)
        shutil.rmtree(previous, ignore_errors=True)
    except BaseException:  # KeyboardInterrupt too: nothing half-written stays behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


# --- reading shards back ---------------------------------------------------------

RECORD_FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def _parsed(files: list[str], features: dict) -> tf.data.Dataset:
    # Parsing a batch of records at once is several times faster than one by one.
    return (tf.data.TFRecordDataset(files).batch(1024)
            .map(lambda records: tf.io.parse_example(records, features), num_parallel_calls=AUTOTUNE,
                 deterministic=True)
            .unbatch())


def _shards(fetched_dir) -> list[Path]:
    files = sorted(Path(fetched_dir).glob("*.tfrecord"))
    if not files:
        raise DataError(f"no .tfrecord shards in {fetched_dir}. Fix: run the fetch stage first (`dvc repro fetch`).")
    return files


def read_records(fetched_dir: str | Path) -> tf.data.Dataset:
    """Every fetched example as {id, image (encoded), label}, in a fixed order."""
    return _parsed([str(p) for p in _shards(fetched_dir)], RECORD_FEATURES)


def read_labels(fetched_dir: str | Path) -> list[tuple[str, int, str]]:
    """(id, label, source split) for every fetched example, without decoding
    images; checks that every shard holds the count its name says and that the
    shards add up to info.json's counts (a partial or mixed fetch is refused)."""
    info = read_info(fetched_dir)
    refetch = f"Fix: re-run the fetch stage (`dvc repro -f fetch@{info.get('dataset', '<dataset>')}`)."
    out, totals = [], Counter()
    for path in sorted(Path(fetched_dir).glob("*.tfrecord")):  # none at all is caught as a count mismatch
        source_split, expected = shard_split_and_count(path)
        batches = _parsed([str(path)], {k: RECORD_FEATURES[k] for k in ("id", "label")}).batch(10_000)
        rows = []
        try:
            for batch in batches.as_numpy_iterator():
                rows += [(i.decode(), int(label), source_split) for i, label in zip(batch["id"], batch["label"])]
        except tf.errors.OpError as error:
            raise DataError(f"{path} is corrupt ({type(error).__name__}). {refetch}") from None
        if len(rows) != expected:
            raise DataError(f"{path} holds {len(rows)} examples but was written with {expected}. {refetch}")
        totals[source_split] += len(rows)
        out += rows
    if dict(totals) != info["splits"]:
        raise DataError(f"the shards in {fetched_dir} hold {dict(sorted(totals.items()))} examples but info.json "
                        f"says {info['splits']}: a partial or mixed fetch. {refetch}")
    return out


# --- split --------------------------------------------------------------------------

def _key(seed: int, example_id: str) -> str:
    return hashlib.sha256(f"{seed}:{example_id}".encode()).hexdigest()


def _stratified_take(examples: list[tuple[str, int]], fraction: float, seed: int):
    """Splits (id, label) pairs into (taken, rest): `fraction` of each class, chosen by
    a seeded hash of the id, so the result ignores input order."""
    by_class = defaultdict(list)
    for example_id, label in examples:
        by_class[label].append(example_id)
    taken, rest = [], []
    for label, ids in by_class.items():
        ids.sort(key=lambda i: _key(seed, i))
        count = round(len(ids) * fraction)
        taken += [(i, label) for i in ids[:count]]
        rest += [(i, label) for i in ids[count:]]
    return taken, rest


def _stratified_limit(examples: list[tuple[str, int]], limit: int | None, seed: int):
    """At most `limit` examples, classes in proportion (interleaved by rank within class)."""
    if limit is None or len(examples) <= limit:
        return examples
    by_class = defaultdict(list)
    for example_id, label in examples:
        by_class[label].append(example_id)
    ranked = []
    for label, ids in by_class.items():
        ids.sort(key=lambda i: _key(seed, i))
        ranked += [((rank + 0.5) / len(ids), _key(seed, i), i, label) for rank, i in enumerate(ids)]
    return [(i, label) for *_, i, label in sorted(ranked)[:limit]]


def split(fetched_dir: str | Path, split_params: dict, limit: int | None, out_dir: str | Path) -> dict:
    """Writes manifest.csv and counts.json; returns the counts."""
    info = read_info(fetched_dir)
    records = read_labels(fetched_dir)
    by_source = defaultdict(list)
    for example_id, label, source_split in records:
        by_source[source_split].append((example_id, label))
    by_source_names = set(by_source)
    seed = split_params["seed"]
    train = by_source.pop("train", [])
    if "test" in by_source:
        test = by_source.pop("test")
    else:
        test, train = _stratified_take(train, split_params["test_fraction"], seed)
    val, train = _stratified_take(train, split_params["val_fraction"], seed + 1)
    if not train:
        raise DataError(f"{fetched_dir} has no training examples. Fix: check the fetched data.")
    splits = {"train": train, "val": val, "test": test}
    splits = {name: sorted(_stratified_limit(rows, limit, seed)) for name, rows in splits.items()}
    _check_every_class(splits, info["classes"], records, split_params, limit, carved="test" not in by_source_names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "label", "split"])
        for name in SPLITS:
            writer.writerows((i, label, name) for i, label in splits[name])
    classes = info["classes"]
    counts = {name: {"total": len(rows),
                     "per_class": {classes[c]: n for c, n in sorted(Counter(l for _, l in rows).items())}}
              for name, rows in splits.items()}
    (out_dir / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    return counts


def _smallest_class_for(fractions: dict, carved: bool) -> int:
    """The fewest examples a class needs for one in each split asked for."""
    for n in range(1, 10_000):
        test = round(n * fractions["test_fraction"]) if carved else 0
        val = round((n - test) * fractions["val_fraction"])
        if (test >= 1 or not carved) and (val >= 1 or not fractions["val_fraction"]) and n - test - val >= 1:
            return n
    return 10_000


def _check_every_class(splits: dict, classes: list[str], records: list, fractions: dict, limit: int | None,
                       carved: bool) -> None:
    """Refuses a split in which some class has no example (a model could not learn
    it, or accuracy would be measured without it)."""
    asked = ["train", "test"] + (["val"] if fractions["val_fraction"] else [])
    per_class = Counter(label for _, label, _ in records)
    for name in asked:
        present = {label for _, label in splits[name]}
        missing = [c for index, c in enumerate(classes) if index not in present]
        if not missing:
            continue
        absent = [c for c in missing if not per_class[classes.index(c)]]
        if absent:
            raise DataError(f"class(es) {absent} have no usable example in the fetched data. Fix: add images of "
                            "them, or remove their folders and use a dataset name of your own.")
        if limit is not None and limit < len(classes) * 3:
            raise DataError(f"data.limit={limit} leaves the {name} split without class(es) {missing}. Fix: raise "
                            f"data.limit to at least {len(classes) * 3} (pass -S data.limit=<n> or null for all).")
        need = _smallest_class_for(fractions, carved)
        scarce = {c: per_class[classes.index(c)] for c in missing}
        raise DataError(f"class(es) {scarce} (usable examples) are too few for a {name} split: with "
                        f"split.test_fraction={fractions['test_fraction']} and split.val_fraction="
                        f"{fractions['val_fraction']} a class needs at least {need}. Fix: add images, or lower "
                        "split.val_fraction / split.test_fraction.")


def read_manifest(split_dir: str | Path) -> dict[str, list[tuple[str, int]]]:
    path = Path(split_dir) / "manifest.csv"
    if not path.exists():
        raise DataError(f"{path} is missing. Fix: run the split stage first (`dvc repro split`).")
    out = {name: [] for name in SPLITS}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            out[row["split"]].append((row["id"], int(row["label"])))
    return out


# --- input pipeline -----------------------------------------------------------------

PAD = 4  # the paper's CIFAR augmentation: pad 4 pixels, random 32x32 crop, flip


def decode_square(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """Decodes any stored image to uint8 size x size x 3: the shorter side is resized
    to `size` (aspect kept), then the centre square is cropped, so photos are
    never squashed."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    shape = tf.shape(image)[:2]

    def resized():
        scale = tf.cast(size, tf.float32) / tf.cast(tf.reduce_min(shape), tf.float32)
        new_shape = tf.cast(tf.math.ceil(tf.cast(shape, tf.float32) * scale), tf.int32)
        square = tf.image.resize_with_crop_or_pad(tf.image.resize(image, new_shape, antialias=True), size, size)
        return tf.cast(tf.clip_by_value(tf.round(square), 0, 255), tf.uint8)

    # Images already at the target size (CIFAR at 32) skip the resize.
    return tf.ensure_shape(tf.cond(tf.reduce_all(shape == size), lambda: image, resized), [size, size, 3])


def load_split(fetched_dir, split_dir, split_name: str, size: int) -> tuple[tf.data.Dataset, list]:
    """The decoded examples of one split as a cached dataset of (id, image uint8, label),
    in shard order, and the split's manifest rows."""
    rows = read_manifest(split_dir)[split_name]
    if not rows:
        return None, rows
    order = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant([i for i, _ in rows]), tf.range(len(rows), dtype=tf.int64)),
        default_value=-1)
    dataset = read_records(fetched_dir).filter(lambda e: order.lookup(e["id"]) >= 0)
    dataset = dataset.map(lambda e: (e["id"], decode_square(e["image"], size), e["label"]),
                          num_parallel_calls=AUTOTUNE, deterministic=True)
    # Cache the decoded split in memory when it fits in a quarter of the machine's
    # memory: decoding is the costly part of an epoch. Otherwise decode every epoch.
    decoded_bytes = len(rows) * size * size * 3
    if decoded_bytes > os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 4:
        print(f"{split_name} split: {decoded_bytes / 2**30:.1f} GiB decoded does not fit in memory; "
              "decoding every epoch", file=sys.stderr)
        return dataset, rows
    return dataset.cache(), rows


def augment(image: tf.Tensor, policy: str, seed: tf.Tensor) -> tf.Tensor:
    """Stateless random augmentation: the same (seed, epoch, index) gives the same
    image, so a resumed training sees exactly the batches it would have seen."""
    if policy == "none":
        return image
    size = image.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if policy == "pad_crop_flip":
        image = tf.pad(image, [[PAD, PAD], [PAD, PAD], [0, 0]])
        image = tf.image.stateless_random_crop(image, [size, size, 3], seed=seeds[0])
    else:  # resized_crop_flip: a crop of 35-100% of the area, aspect 3/4-4/3, resized back
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[1],
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.35, 1.0),
            use_image_if_no_bounding_boxes=True)
        image = tf.slice(image, begin, crop_size)
        image = tf.cast(tf.image.resize(image, [size, size], antialias=True), tf.uint8)
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[2])


def training_batches(cached: tf.data.Dataset, count: int, batch_size: int, policy: str,
                     seed: int, first_epoch: int, epochs: int, threads: int = 0) -> tf.data.Dataset:
    """Batches for epochs [first_epoch, epochs): each epoch is a full-split shuffle
    and augmentation seeded by (seed, epoch), so resuming at any epoch is exact."""
    pairs = cached.map(lambda _, image, label: (image, label))

    def one_epoch(epoch: int) -> tf.data.Dataset:
        # A Python-int seed per epoch: tf.data's shuffle takes no tensor seed, and
        # a reshuffling iterator could not be restarted mid-way on resume.
        shuffled = pairs.shuffle(count, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)

        def augment_indexed(index, pair):
            image, label = pair
            return augment(image, policy, tf.stack([tf.constant(seed, tf.int64), epoch * count + index])), label

        return shuffled.enumerate().map(augment_indexed, num_parallel_calls=AUTOTUNE,
                                        deterministic=True).batch(batch_size)

    epochs_ds = functools.reduce(tf.data.Dataset.concatenate, (one_epoch(e) for e in range(first_epoch, epochs)))
    # A known length lets Keras stop at the last batch instead of running into the
    # end of the data (its "input ran out of data" warning).
    epochs_ds = epochs_ds.apply(tf.data.experimental.assert_cardinality(
        (epochs - first_epoch) * math.ceil(count / batch_size)))
    if threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        epochs_ds = epochs_ds.with_options(options)
    return epochs_ds.prefetch(AUTOTUNE)


def evaluation_batches(cached: tf.data.Dataset, count: int, batch_size: int) -> tf.data.Dataset:
    batches = cached.map(lambda _, image, label: (image, label)).batch(batch_size)
    return batches.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size))).prefetch(AUTOTUNE)


def pixel_sums(cached: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray, int]:
    """Sums over the whole training split of the pixels (HxWxC) and of the squared
    pixels per channel, and the image count: recipe.pixel_moments turns them into
    the normalization's statistics. The whole split, streamed: the cache is in
    class order, so any prefix of it would be biased towards the first classes."""
    images = cached.map(lambda _, image, __: tf.cast(image, tf.float64)).batch(2000)
    total, total_sq, count = 0.0, 0.0, 0
    for batch in images:
        total += tf.reduce_sum(batch, axis=0).numpy()
        total_sq += tf.reduce_sum(tf.square(batch), axis=(0, 1, 2)).numpy()
        count += int(batch.shape[0])
    return total, total_sq, count
