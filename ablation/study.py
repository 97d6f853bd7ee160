"""The study: every arm of `study.grid` as a named DVC experiment, run through
DVC's experiment queue, then collected from the experiments' git commits."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ablation import layout, reporting
from ablation.models import model_name
from ablation.params import (Params, ParamsError, apply_overrides, from_dict, is_plain_name, load_params, parse_params,
                             parse_yaml_text, read_yaml_file)
from ablation.ray_engine import run_name  # the Ray engine's runs: one experiment per arm and seed


def _format(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class Arm:
    """One point of the study grid: its experiment's name, its grid values as
    `key=value` overrides, and its params."""
    name: str
    overrides: tuple[str, ...]
    params: Params


@dataclass(frozen=True)
class ArmResult(Arm):
    """An arm with what its experiments left: `runs` {dataset: {seed: run}} (none:
    the arm failed) and the names of its runs that left no results."""
    runs: dict = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return not self.runs


def arms(params: Params) -> list[Arm]:
    """Each point of the grid. Names say what differs: `resnet34`, `plain50`, plus
    `-key=value` for grid keys outside `model`."""
    grid = params.study.grid
    out = []
    for values in itertools.product(*grid.values()):
        overrides = [f"{key}={_format(value)}" for key, value in zip(grid, values)]
        arm_params = params.with_overrides(overrides)
        extra = [f"{key.split('.')[-1]}{value}" for key, value in zip(grid, values) if not key.startswith("model.")]
        name = "-".join([model_name(arm_params.model), *extra]).replace("_", "-")
        if not is_plain_name(name.replace(".", "_")):  # an experiment name is a git ref and a log file's name
            raise ParamsError(f"params: the grid point {' '.join(overrides)} makes the experiment name {name!r}, "
                              "which is not a plain name (letters, digits, `.`, `_`, `-`; at most 64). "
                              "Fix: grid over values that make one, e.g. numbers or plain words.")
        out.append(Arm(name, tuple(overrides), arm_params))
    return out


def parse_grid_item(item: str) -> tuple[str, list]:
    """`KEY=V1,V2` -> (KEY, [V1, V2]), values parsed as YAML."""
    key, sep, values = item.partition("=")
    if not sep or not values:
        raise ParamsError(f"params: --grid {item!r} is not `key=v1,v2`. Fix: write e.g. --grid model.depth=20,32.")
    return key, [parse_yaml_text(v, f"--grid {item!r}") for v in values.split(",")]


def load_study_params(params_file, overrides: list[str], grid: dict | None, grid_items: list[str]) -> Params:
    """params.yaml with `overrides`, its study.grid replaced by `grid` (when given)
    and updated by the `KEY=V1,V2` grid items. The base is validated at each grid
    key's first value, so a grid may hold values the file alone would refuse
    (depth 56 while params.yaml says resnet depth 34)."""
    raw = read_yaml_file(params_file) if Path(params_file).exists() else None
    raw = apply_overrides(raw, overrides) if isinstance(raw, dict) else {}
    grid = dict(grid or (raw.get("study") or {}).get("grid") or {})
    grid.update(parse_grid_item(item) for item in grid_items)
    firsts = [f"{key}={_format(values[0])}" for key, values in grid.items() if isinstance(values, list) and values]
    params = load_params(params_file, [*overrides, *firsts])
    return from_dict({**params.raw, "study": {"grid": grid}})


PRESET_KEYS = {"set", "grid", "jobs"}


def check_jobs(jobs, where: str = "--jobs") -> None:
    """Experiments at once: a positive integer (DVC's queue waits forever on fewer than one worker)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ParamsError(f"params: {where} is {jobs!r}; allowed: an integer >= 1. Fix: pass --jobs 1 (or 2 with "
                          "train.threads=1 on a 2-core machine).")


def load_preset(path) -> dict:
    """A committed study: {"set": {dotted key: value} applied to every arm, "grid":
    {dotted key: [values]} replacing study.grid, "jobs": experiments at once}."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"study preset {path} not found. Fix: pass a file from studies/, e.g. "
                          "--preset studies/cifar10-cpu.yaml.")
    preset = read_yaml_file(path, f"study preset {path}")
    if not isinstance(preset, dict) or set(preset) - PRESET_KEYS:
        raise ParamsError(f"study preset {path}: top-level keys must be {sorted(PRESET_KEYS)}. "
                          "Fix: see studies/cifar10-cpu.yaml.")
    for key in ("set", "grid"):
        if not isinstance(preset.get(key, {}), dict):
            raise ParamsError(f"study preset {path}: `{key}` must be a mapping of dotted param keys. "
                              "Fix: see studies/cifar10-cpu.yaml.")
    check_jobs(preset.get("jobs"), f"`jobs` in {path}")
    return {"set": [f"{k}={_format(v)}" for k, v in preset.get("set", {}).items()],
            "grid": preset.get("grid", {}), "jobs": preset.get("jobs")}


def _dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    print("$ dvc " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "dvc", *args], check=check)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def experiment_commits() -> dict[str, str]:
    """Experiment name -> commit, from DVC's refs (refs/exps/<baseline>/<name>)."""
    lines = _git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").splitlines()
    return {ref.rsplit("/", 1)[-1]: sha for ref, sha in (line.split() for line in lines)
            if not ref.startswith("refs/exps/celery") and "/exec/" not in ref}


def run(study_arms: list[Arm], common_overrides: list[str], jobs: int) -> None:
    """Queues every arm (replacing earlier experiments of the same name) and runs the queue."""
    existing = set(experiment_commits()) & {arm.name for arm in study_arms}
    if existing:
        _dvc("exp", "remove", *sorted(existing))
    for arm in study_arms:
        settings = [flag for o in [*common_overrides, *arm.overrides] for flag in ("-S", o)]
        _dvc("exp", "run", "--queue", "-n", arm.name, *settings)
    _dvc("exp", "run", "--run-all", "--jobs", str(jobs))


def read_file(commit: str, path: str) -> str | None:
    try:
        return _git("show", f"{commit}:{path}")
    except subprocess.CalledProcessError:
        return None


def collect(study_arms: list[Arm], per_seed: bool = False) -> list[ArmResult]:
    """Each arm with its params (validated as every stage validates them) and its
    runs read from its experiment's commit, or `failed` when its experiment left no
    results. With `per_seed` (the Ray engine), each seed is an experiment of its
    own (`NAME-sSEED`) and the arm gathers the seeds that finished; `missing`
    names the others."""
    commits = experiment_commits()
    results = []
    for arm in study_arms:
        seeds = arm.params.train.seeds
        sources = [(run_name(arm.name, seed), [seed]) for seed in seeds] if per_seed else [(arm.name, None)]
        params, runs, missing = None, {}, []
        for name, run_seeds in sources:
            commit = commits.get(name)
            text = read_file(commit, "params.yaml") if commit else None
            if text is None or read_file(commit, layout.ReportFiles().metrics.as_posix()) is None:
                missing.append(name)
                continue
            params = parse_params(text, f"params.yaml of experiment {name}")
            found = reporting.collect_runs(params.datasets, run_seeds or params.train.seeds,
                                           lambda path, commit=commit: read_file(commit, path))
            for dataset, by_seed in found.items():
                runs.setdefault(dataset, {}).update(by_seed)
        if runs:  # the params its experiments ran with, and the seeds they left
            collected = sorted({seed for by_seed in runs.values() for seed in by_seed})
            params = params.with_overrides([f"train.seeds={collected}"])
        results.append(ArmResult(arm.name, arm.overrides, params or arm.params, runs, tuple(missing)))
    return results
