"""The fetch stage's work: a dataset from tfds or from an image folder/archive
(ablation.ingest) into TFRecord shards (ablation.records), built in a staging
directory and swapped in only once checked."""
from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import socket
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

from ablation.core.atomic_files import replace_dir, restore_interrupted_swap
from ablation.core.errors import DataError
from ablation.core.layout import INFO_FILE
from ablation.data.datasets import class_names, tfds_name, tfds_splits
from ablation.data.ingest import ImageFolder, Progress, ReadLimits
from ablation.data.shards import ShardWriter, read_labels

TFDS_CONNECT_TIMEOUT = 5.0  # seconds to wait for a tfds download host before naming the offline route


def fetch_folder(dataset: str, path: str | Path, out_dir: Path, limits: ReadLimits = ReadLimits()) -> dict:
    folder = ImageFolder(dataset, path, limits)
    writer, formats = ShardWriter(out_dir), Counter()
    for image in folder:
        writer.write(image.split, image.name, image.data, image.label)
        formats[image.format] += 1
    writer.close()
    return {"classes": folder.classes, "splits": dict(sorted(writer.counts.items())),
            "formats": dict(sorted(formats.items())), "skipped": len(folder.skipped),
            "skip_reasons": dict(folder.skip_reasons), "skipped_files": folder.skipped[:100],
            "ignored": len(folder.ignored), "ignored_files": folder.ignored[:100]}


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
    return (f"Fix: read it from a folder or archive instead, `dvc exp run -S data.source=folder -S "
            f"data.paths.{dataset}=<image folder or archive>` (README: Data and params), or put a prepared tfds copy "
            "in TFDS_DATA_DIR.")


def fetch_tfds(dataset: str, out_dir: Path) -> dict:
    import tensorflow_datasets as tfds
    if class_names(dataset) is None:
        raise DataError(f"tfds does not know dataset {dataset!r}. Fix: use -S data.source=folder "
                        f"-S data.paths.{dataset}=<image folder or archive>.")
    builder = tfds.builder(tfds_name(dataset))
    names = tfds_splits(dataset, sorted(builder.info.splits.keys()))
    options = dict(split=names, with_info=True, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    try:  # a prepared copy (TFDS_DATA_DIR) needs no network
        loaded, info = tfds.load(tfds_name(dataset), download=False, **options)
    except Exception:  # tfds raises AssertionError or DatasetNotFoundError when it is not prepared
        # tfds retries an unreachable host for minutes; a short connection check says so in seconds.
        hosts = _download_hosts(builder)
        if not _reachable(hosts):
            raise DataError(f"tfds must download {dataset}, but none of its hosts ({', '.join(hosts)}) answered "
                            f"within {TFDS_CONNECT_TIMEOUT:.0f} s: no network here? {_offline_fix(dataset)}") from None
        try:
            loaded, info = tfds.load(tfds_name(dataset), **options)
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
    return {"classes": class_names(dataset), "splits": dict(sorted(writer.counts.items())),
            "skipped": 0, "skipped_files": [], "ignored": 0, "ignored_files": []}


def _from_folder(dataset: str, path: str | None, out_dir: Path, limits: ReadLimits) -> dict:
    if not path:
        raise DataError(f"data.source is folder but data.paths.{dataset} is not set. "
                        f"Fix: -S data.paths.{dataset}=<image folder or archive>.")
    # Relative paths are from the project root. DVC_ROOT names it even when DVC's
    # queue runs this stage in a temporary copy of the project.
    return fetch_folder(dataset, Path(os.environ.get("DVC_ROOT", ".")) / path, out_dir, limits)


# `data.source`: (dataset, data.paths.<dataset>, output directory, read limits) -> info.
SOURCES = {
    "tfds": lambda dataset, path, out_dir, limits: fetch_tfds(dataset, out_dir),  # tfds' own files; no path
    "folder": _from_folder,
}


def fetch(dataset: str, source: str, path: str | None, out_dir: str | Path,
          limits: ReadLimits = ReadLimits()) -> dict:
    """Writes the dataset's shards and info.json into out_dir; returns the info.
    Everything is built in a staging directory beside out_dir, checked, then
    swapped in: a failed or interrupted fetch leaves the previous output (or
    nothing), never a partial one."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.staging")
    restore_interrupted_swap(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        info = {"dataset": dataset, "source": source, **SOURCES[source](dataset, path, staging, limits)}
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        read_labels(staging)  # every shard complete and counted as info.json says
        replace_dir(staging, out_dir)
    except BaseException:  # KeyboardInterrupt too: nothing half-written stays behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info
