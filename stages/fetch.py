"""fetch stage: python -m stages.fetch DATASET -> data/fetched/DATASET/"""
from ablation import data
from ablation.layout import fetched_dir
from stages import _cli


def main():
    parser = _cli.parser(__doc__)
    parser.add_argument("dataset")
    args = parser.parse_args()
    params = _cli.params_from(args)
    info = data.fetch(args.dataset, params["data"], fetched_dir(args.dataset))
    print(f"fetched {args.dataset}: {info['splits']}, {info['skipped']} unusable files skipped")


if __name__ == "__main__":
    _cli.run(main)
