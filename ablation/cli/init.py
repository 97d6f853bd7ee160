"""init: ablate init [DIR] [--data PATH] -> a ready project in DIR (default: here):
params.yaml with every knob commented, dvc.yaml calling `ablate`, studies/example.yaml,
nets/network.py (the network, its options the study's knobs), .gitignore/.dvcignore;
git and DVC initialized where missing. An existing params.yaml or dvc.yaml is kept
unless --force."""
import argparse
from pathlib import Path

from ablation.core import project


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", default=".", help="the project folder (default: the current one)")
    parser.add_argument("--data", help="the images: a folder of class folders, or a .tar.gz/.zip of one "
                                       "(default: data/images, made empty)")
    parser.add_argument("--dataset", default="images", help="the dataset's name in params.yaml (default: images)")
    parser.add_argument("--force", action="store_true", help="replace an existing params.yaml and dvc.yaml")
    return parser


def main():
    args = parser().parse_args()
    print("\n".join(project.init(Path(args.dir), args.data, args.dataset, args.force)))
