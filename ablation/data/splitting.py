"""The split stage's work: a seeded, stratified train/val/test split made from a
hash of each example id, written as a manifest (id,label,split) and per-class
counts (a DVC metric)."""
from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter, defaultdict
from pathlib import Path

from ablation.core import atomic_files, reading
from ablation.core.errors import DataError
from ablation.core.layout import COUNTS_FILE, MANIFEST_FILE
from ablation.core.sections import SplitParams
from ablation.data.shards import read_info, read_labels

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("id", "label", "split")


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


def split(fetched_dir: str | Path, fractions: SplitParams, limit: int | None, out_dir: str | Path) -> dict:
    """Writes manifest.csv and counts.json; returns the counts."""
    info = read_info(fetched_dir)
    records = read_labels(fetched_dir)
    by_source = defaultdict(list)
    for example_id, label, source_split in records:
        by_source[source_split].append((example_id, label))
    by_source_names = set(by_source)
    seed = fractions.seed
    train = by_source.pop("train", [])
    if "test" in by_source:
        test = by_source.pop("test")
    else:
        test, train = _stratified_take(train, fractions.test_fraction, seed)
    val, train = _stratified_take(train, fractions.val_fraction, seed + 1)
    if not train:
        raise DataError(f"{fetched_dir} has no training examples. Fix: check the fetched data.")
    splits = {"train": train, "val": val, "test": test}
    splits = {name: sorted(_stratified_limit(rows, limit, seed)) for name, rows in splits.items()}
    _check_every_class(splits, info["classes"], records, fractions, limit, carved="test" not in by_source_names)
    out_dir = Path(out_dir)
    manifest = reading.csv_text([MANIFEST_COLUMNS, *((i, label, name) for name in SPLITS for i, label in splits[name])])
    classes = info["classes"]
    counts = {name: {"total": len(rows),
                     "per_class": {classes[c]: n for c, n in sorted(Counter(label for _, label in rows).items())}}
              for name, rows in splits.items()}
    atomic_files.write_text(out_dir / MANIFEST_FILE, manifest)
    atomic_files.write_json(out_dir / COUNTS_FILE, counts)
    return counts


def _smallest_class_for(fractions: SplitParams, carved: bool) -> int:
    """The fewest examples a class needs for one in each split asked for."""
    for n in range(1, 10_000):
        test = round(n * fractions.test_fraction) if carved else 0
        val = round((n - test) * fractions.val_fraction)
        if (test >= 1 or not carved) and (val >= 1 or not fractions.val_fraction) and n - test - val >= 1:
            return n
    return 10_000


def _check_every_class(splits: dict, classes: list[str], records: list, fractions: SplitParams, limit: int | None,
                       carved: bool) -> None:
    """Refuses a split in which some class has no example (a model could not learn
    it, or accuracy would be measured without it)."""
    asked = ["train", "test"] + (["val"] if fractions.val_fraction else [])
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
                        f"split.test_fraction={fractions.test_fraction} and split.val_fraction="
                        f"{fractions.val_fraction} a class needs at least {need}. Fix: add images, or lower "
                        "split.val_fraction / split.test_fraction.")


def read_manifest(split_dir: str | Path) -> dict[str, list[tuple[str, int]]]:
    path = Path(split_dir) / MANIFEST_FILE
    text = reading.read_text(path, "manifest", "run the split stage (`dvc repro -f split`).")
    out = {name: [] for name in SPLITS}
    damaged = "Fix: re-run the split stage (`dvc repro -f split`)."
    reader = csv.reader(io.StringIO(text, newline=""))
    if tuple(next(reader, ())) != MANIFEST_COLUMNS:
        raise DataError(f"{path} does not start with the header {','.join(MANIFEST_COLUMNS)}. {damaged}")
    for line, row in enumerate(reader, start=2):
        if len(row) != 3 or row[2] not in out or not (row[1].isascii() and row[1].isdigit() and len(row[1]) < 10):
            raise DataError(f"{path} line {line} is not `id,label,split` ({','.join(row)[:80]!r}): truncated "
                            f"or damaged. {damaged}")
        out[row[2]].append((row[0], int(row[1])))
    return out


def check_manifest(fetched_dir: str | Path, split_dir: str | Path) -> None:
    """The splits do not share an example and name none twice (an image trained on and
    tested on would inflate the test accuracy), and every example the manifest names is
    in the fetched data with the same label: a manifest of another fetch would train
    and test on fewer images than it says."""
    manifest = read_manifest(split_dir)
    seen: dict[str, str] = {}
    leaked = []
    for split, split_rows in manifest.items():
        for example_id, _ in split_rows:
            if example_id in seen:
                leaked.append(f"{example_id!r} ({seen[example_id]}, {split})")
            seen.setdefault(example_id, split)
    if leaked:
        raise DataError(f"{Path(split_dir) / MANIFEST_FILE} names {len(leaked)} example(s) twice, in two splits or "
                        f"one: {', '.join(leaked[:3])}{', ...' if len(leaked) > 3 else ''}; training on a test image "
                        "would inflate its accuracy. Fix: re-run the split stage (`dvc repro -f split`).")
    fetched = {example_id: label for example_id, label, _ in read_labels(fetched_dir)}
    rows = [row for split_rows in manifest.values() for row in split_rows]
    foreign = [example_id for example_id, label in rows if fetched.get(example_id) != label]
    if foreign:
        raise DataError(f"{Path(split_dir) / MANIFEST_FILE} names {len(foreign)} of its {len(rows)} examples that "
                        f"the fetched data lacks or labels otherwise (e.g. {foreign[0]!r}): a split of another fetch. "
                        "Fix: re-run the split stage (`dvc repro -f split`).")
