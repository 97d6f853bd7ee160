"""fetch stage: python -m stages.fetch DATASET -> data/fetched/DATASET/, data/fetched/DATASET.metrics.json"""
import json

from ablation import fetching
from ablation.layout import fetch_metrics, fetched_dir
from stages import _cli


def main():
    args, run = _cli.stage_args(__doc__)
    info = fetching.fetch(run.dataset, run.source, run.path, fetched_dir(run.dataset))
    metrics = {"examples": info["splits"], "skipped": info["skipped"], "ignored": info["ignored"]}
    fetch_metrics(args.dataset).write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"fetched {args.dataset}: {info['splits']}, {info['skipped']} unusable images skipped, "
          f"{info['ignored']} files outside class folders or not images ignored")


if __name__ == "__main__":
    _cli.run(main)
