"""The fetched dataset on disk: TFRecord shards of {id, image (encoded bytes),
label}, named `<split>-NNNNN-of-COUNT.tfrecord` so a shard cut short is told
from a whole one, beside info.json (classes, examples per source split,
skipped and ignored files)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import tensorflow as tf

from ablation.core.errors import DataError
from ablation.core.layout import INFO_FILE
from ablation.core.reading import read_json

SHARD_SIZE = 10_000


def read_info(fetched_dir: str | Path) -> dict:
    return read_json(Path(fetched_dir) / INFO_FILE, "record", "run the fetch stage (`dvc repro -f fetch`).")


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
    if len(parts) != 4 or parts[2] != "of" or not (parts[3].isascii() and parts[3].isdigit()):
        raise DataError(f"{path} is not a shard this project wrote (no example count in its name). "
                        "Fix: re-run the fetch stage (`dvc repro -f fetch`).")
    return parts[0], int(parts[3])


RECORD_FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def _parsed(files: list[str], features: dict) -> tf.data.Dataset:
    # Parsing a batch of records at once is several times faster than one by one.
    return (tf.data.TFRecordDataset(files).batch(1024)
            .map(lambda records: tf.io.parse_example(records, features), num_parallel_calls=tf.data.AUTOTUNE,
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
