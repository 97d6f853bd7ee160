"""`ablate`: the suite's one command. `ablate COMMAND [ARGS]` runs a pipeline
stage, the study driver or `init`; `ablate COMMAND --help` says what each takes.

    ablate init [DIR]                       # a ready project: params.yaml, dvc.yaml, studies/, a builder
    ablate fetch DATASET | split DATASET    # the pipeline's stages, as dvc.yaml runs them
    ablate train DATASET SEED | evaluate DATASET SEED | report
    ablate describe [-S key=value]          # what the arm builds: parameters, FLOPs, layers
    ablate study --grid model.depth=20,32   # an ablation grid as DVC experiments, and its report
    ablate exps                             # those experiments, one narrow row each
"""
from __future__ import annotations

from ablation.cli import guard

import difflib
import importlib
import sys

# name -> what it does. Each is the module ablation.cli.NAME with a main(); this
# module imports nothing heavy, so `ablate --help` and `ablate init` answer at once.
COMMANDS = {
    "init": "write a ready project (params.yaml, dvc.yaml, studies/, a network builder) into DIR",
    "fetch": "stage: read a dataset into data/fetched/DATASET",
    "split": "stage: split a fetched dataset into train, validation and test",
    "train": "stage: train the arm on DATASET with SEED",
    "evaluate": "stage: test a trained run",
    "report": "stage: the arm's report, metrics and plots",
    "describe": "print what the arm builds (parameters, FLOPs, layers)",
    "study": "run a grid of arms as DVC experiments (or on Ray) and write its report",
    "exps": "the experiments here, one row each: what each changed, its test accuracy",
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    return (__doc__.split("\n\n")[0] + "\n\ncommands:\n"
            + "\n".join(f"  {name.ljust(width)}  {meaning}" for name, meaning in COMMANDS.items()))


def parser_of(name: str):
    """`ablate NAME`'s argument parser (the docs' commands are checked against these)."""
    return importlib.import_module(f"ablation.cli.{name}").parser()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return
    name = argv[0]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean `ablate {close[0]}`? " if close else ""
        print(f"error: `{name}` is not an ablate command; {hint}Fix: use one of {', '.join(COMMANDS)} "
              "(`ablate --help`).", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = [f"ablate {name}", *argv[1:]]  # argparse's usage line names the command
    command = importlib.import_module(f"ablation.cli.{name}")  # a stage's imports common first
    guard.main_guarded(command.main, name)
