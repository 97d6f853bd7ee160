"""The Keras backend a study trains on: `--backend NAME`, or `auto` (the default
where KERAS_BACKEND is not set): the backend of the study's runs so far, so that
its seeds stay comparable, else the installed backend whose train step a short
probe measured fastest on this machine kind.

The backend is fixed when Keras is imported, so each probe runs in a process of
its own (dry_run.measured_rate, the dry run's FLOP/s probe, on the study's first
arm's settings), and the study hands its choice to DVC's queue workers through
KERAS_BACKEND. A probe's rates are kept in .cache/backends/, one file per machine
kind, installed backends and probed settings, so a machine measures them once.
Each run records the backend it ran on in train.json."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable

from ablation.core import backends, machine, reading
from ablation.core.errors import ParamsError, UserError

AUTO = "auto"
CACHE = Path(".cache") / "backends"

PROBE = """
import json, sys
from ablation.cli import common  # first: it checks KERAS_BACKEND
from ablation.study import dry_run
from ablation.core.params import load_params
params = load_params(sys.argv[1], json.loads(sys.argv[2]))
print(json.dumps(dry_run.measured_rate(params.for_dataset(params.datasets[0]))))
"""


def probe(backend: str, params_file: str, overrides: list[str]) -> float:
    """Training FLOP/s of the dry run's probe under `backend`, in a process of its own."""
    done = reading.command_output([sys.executable, "-c", PROBE, params_file, json.dumps(overrides)],
                                  env={**os.environ, "KERAS_BACKEND": backend})
    if done.returncode:
        raise ParamsError(f"the {backend} probe failed: {done.stderr.strip().splitlines()[-1:] or ['no output']}. "
                          f"Fix: pass --backend with another backend ({', '.join(backends.installed())}).")
    return float(reading.parse_json((done.stdout.strip().splitlines() or ["null"])[-1], f"the {backend} probe's "
                                    "output", "rerun; report it if it persists.", ParamsError) or 0.0)


def default(local: bool = True) -> str:
    """--backend's default: KERAS_BACKEND where the user set it, else auto; for an
    engine that runs elsewhere (Ray's nodes: GPUs, other CPUs), which a probe on the
    driver says nothing about, tensorflow."""
    return os.environ.get("KERAS_BACKEND") or (AUTO if local else "tensorflow")


def study_backend(train_records: list[dict]) -> str | None:
    """The one backend a study's committed runs trained on (None: no runs, or several)."""
    found = {record.get("backend") for record in train_records} - {None}
    return found.pop() if len(found) == 1 else None


def cached(measure: Callable[[str, str, list[str]], float], available: list[str], params_file: str,
           overrides: list[str], cache: Path = CACHE) -> tuple[dict[str, float], str]:
    """{backend: FLOP/s} for each of the `available` backends, and where they came
    from: read from `cache` when this machine kind measured them for these settings,
    else measured now and kept there."""
    cpu, flags = machine.cpu_kind()
    identity = [cpu, flags, os.cpu_count(), overrides, params_file,
                {name: machine.version(name) for name in available}]
    file = cache / f"{hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]}.json"
    try:
        return reading.read_json(file, "record", "")["rates"], f"measured earlier on this machine kind, kept in {file}"
    except (UserError, KeyError, TypeError):
        pass
    rates = {name: measure(name, params_file, overrides) for name in available}
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"key": identity, "rates": rates}, indent=1) + "\n")
    return rates, "measured here"


def choose(requested: str, params_file: str, overrides: list[str],
           measure: Callable[[str, str, list[str]], float] = probe, kept: Callable[[], str | None] = lambda: None,
           cache: Path = CACHE) -> tuple[str, dict[str, float], list[str]]:
    """(backend, {backend: measured FLOP/s}, lines to print). `requested` is a backend
    or auto; `kept()` is the backend of the study's runs so far, which auto keeps while
    it is installed. A backend that is not installed is refused with the install command."""
    available = backends.installed()
    if requested != AUTO:
        if requested not in available:
            install = backends.INSTALL.get(requested, f"pip install {requested}")
            raise ParamsError(f"--backend {requested}: {requested} is not installed. Fix: `{install}`, "
                              f"or pass --backend auto.")
        return requested, {}, [f"backend: {requested}"]
    if (study_runs := kept()) in available:
        return study_runs, {}, [f"backend: auto -> {study_runs} (the backend of this study's runs so far, kept so "
                                f"that its seeds stay comparable; --backend NAME to change it)"]
    if len(available) == 1:
        return available[0], {}, [f"backend: auto -> {available[0]} (the only backend installed)"]
    rates, origin = cached(measure, available, params_file, overrides, cache)
    best = max(rates, key=rates.get)
    measured = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in sorted(rates.items(), key=lambda kv: -kv[1]))
    return best, rates, [f"backend: auto -> {best} (train-step GFLOP/s {origin}: {measured})"]
