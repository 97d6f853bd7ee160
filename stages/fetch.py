"""fetch stage: python -m stages.fetch DATASET -> data/fetched/DATASET/"""
from ablation import data
from ablation.layout import fetched_dir
from stages import _cli


def main():
    args, params = _cli.stage_args(__doc__)
    info = data.fetch(args.dataset, params["data"], fetched_dir(args.dataset))
    print(f"fetched {args.dataset}: {info['splits']}, {info['skipped']} unusable files skipped")


if __name__ == "__main__":
    _cli.run(main)
