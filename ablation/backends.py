"""The Keras backend a study trains on: `--backend NAME`, or `auto`, the installed
backend whose train step a short probe on this machine measured fastest.

The backend is fixed when Keras is imported, so each probe runs in a process of
its own (dry_run.measured_rate, the dry run's FLOP/s probe, on the study's first
arm's settings), and the study hands its choice to DVC's queue workers through
KERAS_BACKEND. Each run records the backend it ran on in train.json."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Callable

from ablation.errors import ParamsError

BACKENDS = ("tensorflow", "jax", "torch")  # each is also the module it imports
AUTO = "auto"
# How to install each optional backend. torch: its CPU wheel, as PyPI's default Linux
# wheel carries CUDA (several GB).
INSTALL = {"torch": "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
           "jax": "pip install jax==0.10.2 jaxlib==0.10.2"}

PROBE = """
import json, sys
from stages import _cli  # first: it checks KERAS_BACKEND
from ablation import dry_run
from ablation.params import load_params
params = load_params(sys.argv[1], json.loads(sys.argv[2]))
print(json.dumps(dry_run.measured_rate(params.for_dataset(params.datasets[0]))))
"""


def installed() -> list[str]:
    return [name for name in BACKENDS if importable(name)]


def importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install, or an import hook that refuses it
        return False


def probe(backend: str, params_file: str, overrides: list[str]) -> float:
    """Training FLOP/s of the dry run's probe under `backend`, in a process of its own."""
    done = subprocess.run([sys.executable, "-c", PROBE, params_file, json.dumps(overrides)], capture_output=True,
                          text=True, env={**os.environ, "KERAS_BACKEND": backend})
    if done.returncode:
        raise ParamsError(f"the {backend} probe failed: {done.stderr.strip().splitlines()[-1:] or ['no output']}. "
                          f"Fix: pass --backend with another backend ({', '.join(installed())}).")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def choose(requested: str, params_file: str, overrides: list[str],
           measure: Callable[[str, str, list[str]], float] = probe) -> tuple[str, dict[str, float], list[str]]:
    """(backend, {backend: measured FLOP/s}, lines to print). `requested` is a backend
    or auto; a backend that is not installed is refused with the install command."""
    if requested != AUTO:
        if requested not in installed():
            raise ParamsError(f"--backend {requested}: {requested} is not installed. Fix: "
                              f"`{INSTALL.get(requested, 'pip install ' + requested)}`, or pass --backend auto.")
        return requested, {}, [f"backend: {requested}"]
    rates = {name: measure(name, params_file, overrides) for name in installed()}
    best = max(rates, key=rates.get)
    measured = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in sorted(rates.items(), key=lambda kv: -kv[1]))
    return best, rates, [f"backend: auto -> {best} (train-step GFLOP/s measured here: {measured})"]
