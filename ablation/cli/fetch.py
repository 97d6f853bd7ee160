"""fetch stage: ablate fetch DATASET -> data/fetched/DATASET/, data/fetched/DATASET.metrics.json"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

from ablation.core import atomic_files
from ablation.core.layout import fetch_metrics, fetched_dir
from ablation.data import fetch
from ablation.data.ingest import ReadLimits


def parser():
    return common.stage_parser(__doc__)


def main():
    args, run = common.stage_args(parser())
    limits = ReadLimits(max_file_bytes=int(run.max_file_mb * 2**20), max_pixels=int(run.max_image_megapixels * 1e6))
    info = fetch.fetch(run.dataset, run.source, run.path, fetched_dir(run.dataset), limits)
    metrics = {"examples": info["splits"], "skipped": info["skipped"], "ignored": info["ignored"]}
    atomic_files.write_json(fetch_metrics(args.dataset), metrics)
    reasons = "".join(f"; {count:,} {reason}" for reason, count in info.get("skip_reasons", {}).items())
    print(f"fetched {args.dataset}: {info['splits']}, {info['skipped']} unusable images skipped{reasons}, "
          f"{info['ignored']} files outside class folders or not images ignored")
