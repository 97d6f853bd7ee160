"""exps: ablate exps -> DVC's experiments here, one row each: the knobs each changed
from its baseline and each dataset's test accuracy and final training error
(`dvc exp show` has every column)."""
from ablation.cli import common  # noqa: F401  first: what it reads imports TensorFlow, quieted there

import argparse

from ablation.core import reading
from ablation.core.errors import DataError
from ablation.report.experiments_table import table
from ablation.study.repo import captured


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)


def main():
    parser().parse_args()
    shown = captured("dvc", "exp", "show", "--json")
    if shown.returncode:
        raise DataError(f"`dvc exp show` failed: {(shown.stderr.strip().splitlines() or ['no output'])[-1]}. Fix: "
                        "run in a DVC project (`ablate init`, or `dvc init` in a git repository).")
    shown = reading.parse_json(shown.stdout, "`dvc exp show --json`'s output", "upgrade DVC (`pip install -U dvc`).")
    print(table(shown))
