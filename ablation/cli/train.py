"""train stage: ablate train DATASET SEED -> results/DATASET/seedSEED/{model.keras,live/,train.json}"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

from ablation.core.layout import checkpoints_dir, fetched_dir, run_dir, split_dir
from ablation.training import fit


def parser():
    return common.stage_parser(__doc__, seed=True)


def main():
    args, run = common.stage_args(parser())
    metrics = fit.train(run, args.seed, fetched_dir(args.dataset), split_dir(args.dataset),
                             run_dir(args.dataset, args.seed), checkpoints_dir(args.dataset, args.seed))
    accuracy = metrics["val_accuracy"]
    print(f"trained {metrics['model']} on {args.dataset} ({metrics['backend']}, {metrics['mixed_precision']}): "
          "val accuracy "
          f"{'none (no validation split)' if accuracy is None else f'{accuracy:.4f}'}, "
          f"diverged {metrics['diverged']}, {metrics['images_per_second']:.1f} images/s")
