"""evaluate stage: python -m stages.evaluate DATASET SEED -> results/DATASET/seedSEED/eval/"""
from ablation import evaluation
from ablation.layout import fetched_dir, run_dir, split_dir
from stages import _cli


def main():
    args, params = _cli.stage_args(__doc__, seed=True)
    run = run_dir(args.dataset, args.seed)
    metrics = evaluation.evaluate(run / "model.keras", fetched_dir(args.dataset), split_dir(args.dataset),
                                  params["data"]["image_size"][args.dataset], run / "eval")
    print(f"evaluated {args.dataset} seed {args.seed}: test accuracy {metrics['accuracy']:.4f}")


if __name__ == "__main__":
    _cli.run(main)
