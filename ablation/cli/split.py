"""split stage: ablate split DATASET -> data/split/DATASET/{manifest.csv,counts.json}"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

from ablation.core import atomic_files
from ablation.core.layout import fetched_dir, split_dir
from ablation.data import splitting


def parser():
    return common.stage_parser(__doc__)


def main():
    args, run = common.stage_args(parser())
    with atomic_files.all_or_nothing():  # the manifest and its counts together
        counts = splitting.split(fetched_dir(run.dataset), run.split, run.limit, split_dir(run.dataset))
    print(f"split {args.dataset}: " + ", ".join(f"{k} {v['total']:,}" for k, v in counts.items()))
