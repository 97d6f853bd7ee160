"""Shared command-line plumbing of the stage scripts: `-S key=value` overrides
(DVC's syntax) and clean one-line errors for bad params or data."""
from __future__ import annotations

import argparse
import sys

import tensorflow as tf

from ablation.errors import UserError
from ablation.params import Params, RunSettings, load_params


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml value for this run (as `dvc exp run -S`)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def run(main) -> None:
    """Runs main(); a UserError (bad params or data, a cluster not ready) ends the
    process with its message and exit code 2."""
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except tf.errors.DataLossError as error:  # a shard damaged after the split checked it
        print(f"error: a fetched data file is corrupt ({error.message.splitlines()[0]}). Fix: re-run the fetch "
              "stage (`dvc repro -f fetch`).", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: finished outputs are kept; run the same command again to go on "
              "(training resumes from its last epoch checkpoint)", file=sys.stderr)
        sys.exit(130)


def params_from(args) -> Params:
    return load_params(args.params, args.overrides)


def stage_args(description: str, seed: bool = False) -> tuple[argparse.Namespace, RunSettings]:
    """(args, the dataset's settings) of a per-dataset stage: `DATASET [SEED] [-S key=value ...]`."""
    arguments = parser(description)
    arguments.add_argument("dataset")
    if seed:
        arguments.add_argument("seed", type=int)
    args = arguments.parse_args()
    return args, params_from(args).for_dataset(args.dataset)
