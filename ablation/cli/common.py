"""Shared plumbing of the `ablate` commands: `-S key=value` overrides (DVC's
syntax) and clean one-line errors for bad params or data. Each command imports it
first: it checks KERAS_BACKEND before anything loads Keras."""
from __future__ import annotations

import argparse
import os
import sys

from ablation.core.backends import BACKENDS, INSTALL, importable


# Keras reads KERAS_BACKEND when it is imported and fails with a traceback for a
# misspelled or missing backend, so it is checked here, before that import.
def check_backend(name: str) -> str | None:
    """The one-line error for KERAS_BACKEND=name, or None when it can load."""
    if name not in BACKENDS:
        return (f"error: KERAS_BACKEND={name!r} is not a Keras backend this project runs on "
                f"({', '.join(BACKENDS)}). Fix: unset it, or set KERAS_BACKEND=tensorflow, jax or torch.")
    if not importable(name):
        return (f"error: KERAS_BACKEND={name} but {name} is not installed. Fix: "
                f"`{INSTALL.get(name, f'pip install {name}')}`, or unset KERAS_BACKEND (TensorFlow).")
    return None


# Keras (keras.json), matplotlib (its font cache) and DVC (its site cache, /var/tmp/dvc)
# write files of their own: into the project's ignored .cache/, never under HOME or /var/tmp.
# The project is the working directory (where dvc.yaml runs its commands), not where the
# suite is installed.
_CACHE = os.path.abspath(".cache")
for _variable, _folder in (("KERAS_HOME", "keras"), ("MPLCONFIGDIR", "matplotlib"), ("DVC_SITE_CACHE_DIR", "dvc")):
    os.environ.setdefault(_variable, os.path.join(_CACHE, _folder))
os.environ.setdefault("DVC_NO_ANALYTICS", "1")  # its analytics would write a user id under HOME
# PyTorch's OpenMP threads spin-wait between ops by default: its train step ran at
# 0.45x on a loaded 2-core EPYC (issue 33). Read once, when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if (_backend_error := check_backend(os.environ.get("KERAS_BACKEND", "tensorflow"))) is not None:
    print(_backend_error, file=sys.stderr)
    sys.exit(2)

from ablation.core.console import quiet_stderr, verbose  # noqa: E402

if not verbose():  # TensorFlow's info lines after start-up (tf.data's buffer size), unless asked for
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
with quiet_stderr():  # TensorFlow's C++ start-up lines, into .cache/logs/noise.log
    import tensorflow  # noqa: E402, F401

from ablation.core.params import Params, ParamsError, RunSettings, load_params  # noqa: E402
from ablation.core.sections import MAX_SEED  # noqa: E402


def parser(description: str) -> argparse.ArgumentParser:
    # Raw: a stage's docstring keeps its lines (one example command per line).
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml value for this run (as `dvc exp run -S`)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def params_from(args) -> Params:
    return load_params(args.params, args.overrides)


def stage_parser(description: str, seed: bool = False) -> argparse.ArgumentParser:
    """A per-dataset stage's arguments: `DATASET [SEED] [-S key=value ...]`."""
    arguments = parser(description)
    arguments.add_argument("dataset")
    if seed:
        arguments.add_argument("seed", type=int)
    return arguments


def stage_args(arguments: argparse.ArgumentParser) -> tuple[argparse.Namespace, RunSettings]:
    """(args, the dataset's settings) of a per-dataset stage, from the command line."""
    args = arguments.parse_args()
    if getattr(args, "seed", None) is not None and not 0 <= args.seed <= MAX_SEED:
        raise ParamsError(f"params: seed {args.seed} is out of range; allowed: 0 to {MAX_SEED}. Fix: pass a seed "
                          "from train.seeds.")
    return args, params_from(args).for_dataset(args.dataset)
