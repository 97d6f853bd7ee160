"""What an experiment costs on this machine besides its training steps: each stage
process's start-up (Python, Keras, the backend), reading and splitting the data,
validation, evaluation, the report, and DVC's own work (a copy of the workspace
per experiment, its commit). The dry run and the study's ETA add it to the
training time the FLOPs model gives.

It is counted per stage process (fetch and split per dataset, train and evaluate
per run, one report) and kept in .cache/backends/ beside the backend probe, one
file per machine kind. It is measured from this machine's own studies: an
experiment's wall time less its runs' recorded training seconds, over its stages
(the median over a study's experiments). Before a study has run here it is the
start-up of one stage process, timed now, which leaves the data work out, so that
first estimate errs short; the dry run says which of the two it used."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ablation.core import machine, reading
from ablation.study.backend_choice import CACHE

# One stage process's start-up: what every stage imports before its own work.
STARTUP = "import ablation.cli.common, keras, ablation.training.fit"


def stage_count(params) -> int:
    """Stage processes one experiment of these params runs (dvc.yaml's stages)."""
    datasets, seeds = len(params.datasets), len(params.train.seeds)
    return 2 * datasets + 2 * datasets * seeds + 1


def _file(cache: Path) -> Path:
    cpu, flags = machine.cpu_kind()
    key = json.dumps([cpu, flags, os.cpu_count(), os.environ.get("KERAS_BACKEND", "tensorflow")])
    return cache / f"overhead-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _startup_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", STARTUP], check=True, capture_output=True)
    return time.perf_counter() - start


def per_stage(cache: Path = CACHE, measure=_startup_seconds) -> tuple[float, str]:
    """(seconds per stage process, where the figure came from): measured from a
    study on this machine kind if one ran, else one stage's start-up timed now."""
    file = _file(cache)
    try:
        kept = reading.read_json(file, "record", "")
        return float(kept["seconds_per_stage"]), kept["measured"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    seconds = measure()
    return seconds, "one stage's start-up, timed now: no study has run on this machine kind yet"


def record(walls: dict[str, float], results: list, study: str, cache: Path = CACHE) -> float | None:
    """Keeps the per-stage overhead measured from a study's experiments: `walls`
    {experiment: wall seconds, queue start to end} and their `results` (ArmResults
    of the same names, each run's train.json with its training seconds)."""
    per_stage_seconds = []
    for result in results:
        if result.name not in walls or result.failed:
            continue
        runs = [run for by_seed in result.runs.values() for run in by_seed.values()]
        training = sum(run["train"].get("train_seconds", 0) for run in runs)
        stages = 2 * len(result.runs) + 2 * len(runs) + 1
        per_stage_seconds.append(max(walls[result.name] - training, 0) / stages)
    if not per_stage_seconds:
        return None
    seconds = statistics.median(per_stage_seconds)
    file = _file(cache)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"seconds_per_stage": seconds, "measured":
                                f"measured on this machine kind from study {study}'s {len(per_stage_seconds)} "
                                f"experiment(s) on {datetime.date.today()}"}, indent=1) + "\n")
    return seconds
