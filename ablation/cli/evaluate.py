"""evaluate stage: ablate evaluate DATASET SEED -> results/DATASET/seedSEED/eval/"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

from ablation.core import atomic_files
from ablation.core.layout import fetched_dir, run_files, split_dir
from ablation.report.figures import plot_confusion
from ablation.training import evaluate


def parser():
    return common.stage_parser(__doc__, seed=True)


def main():
    args, run = common.stage_args(parser())
    files = run_files(args.dataset, args.seed)
    with atomic_files.all_or_nothing():  # predictions, metrics and figure, or none of them
        result = evaluate.evaluate(files, fetched_dir(args.dataset), split_dir(args.dataset), run.image_size)
        accuracy = result.metrics["accuracy"]
        plot_confusion(result.confusion, result.classes, files.confusion,
                       title=f"{result.model_name}: test accuracy {accuracy:.3f}")
    print(f"evaluated {args.dataset} seed {args.seed}: test accuracy {accuracy:.4f}")
