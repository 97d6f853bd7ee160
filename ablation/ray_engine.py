"""The study on a Ray cluster, for grids that outgrow one machine. DVC's queue is
local by design, so each run (one arm, one seed) becomes a Ray task that asks for
its GPUs, clones the study's baseline commit from the shared git remote, pulls
its inputs from the DVC remote, runs `dvc exp run` as a subprocess (its GPU
memory is freed when it exits) and shares the experiment with `dvc exp push`,
DVC's documented way to move experiments between machines. The driver checks
the remotes first, shows progress, keeps failed runs' logs, retries, resumes,
and `dvc exp pull`s every run so that `dvc exp show`, `dvc metrics diff` and the
study report work as after a local study."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ablation import console
from ablation.errors import UserError
from ablation.layout import inside
from ablation.params import Params, ParamsError

LOG_TAIL_LINES = 200
PUSH_ATTEMPTS = 4  # concurrent `dvc exp push`es to one git remote can race on its ref locks


class EngineError(UserError):
    """The cluster or the remotes are not ready for the study; the message names the fix."""


@dataclass(frozen=True)
class Run:
    """One arm trained with one seed: the unit of work, an experiment of its own."""
    name: str
    arm: str
    seed: int
    overrides: tuple[str, ...]


def run_name(arm_name: str, seed: int) -> str:
    return f"{arm_name}-s{seed}"


def plan(study_arms: list, common_overrides: list[str]) -> list[Run]:
    """One run per arm (a study.Arm) and seed."""
    return [Run(run_name(arm.name, seed), arm.name, seed, (*common_overrides, *arm.overrides, f"train.seeds=[{seed}]"))
            for arm in study_arms for seed in arm.params.train.seeds]


def _git(*args: str, cwd=None, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)


def _dvc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)


# --- before submitting ---------------------------------------------------------------

@dataclass(frozen=True)
class Baseline:
    commit: str
    remote: str  # the git remote's name here
    url: str     # what the workers clone


def check_baseline(git_remote: str) -> Baseline:
    """The runs clone the baseline commit from the git remote and push their
    experiments back, with the DVC remote for data: all three must be in place."""
    dirty = _git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    if dirty:
        raise EngineError("uncommitted changes to tracked files (" + ", ".join(
            line[3:] for line in dirty.splitlines()[:5]) + "): each run clones the baseline commit and would not "
            f"see them. Fix: commit them and `git push {git_remote}`.")
    commit = _git("rev-parse", "HEAD").stdout.strip()
    url = _git("remote", "get-url", git_remote, check=False)
    if url.returncode:
        raise EngineError(f"no git remote named {git_remote!r}: the workers clone the baseline from it. Fix: "
                          f"`git remote add {git_remote} URL` (a repository every node can reach), or --git-remote.")
    if _git("fetch", "-q", git_remote, check=False).returncode:
        raise EngineError(f"git remote {git_remote!r} ({url.stdout.strip()}) cannot be fetched from here. "
                          "Fix: check the URL and your access to it.")
    if not _git("for-each-ref", "--contains", commit, f"refs/remotes/{git_remote}").stdout.strip():
        raise EngineError(f"the baseline commit {commit[:8]} is not on the git remote {git_remote!r}, so the "
                          f"workers cannot clone it. Fix: `git push {git_remote} HEAD`.")
    default = _dvc("remote", "default")
    # Without one, DVC prints "No default remote set" on stdout and exits 1.
    if default.returncode or not default.stdout.strip():
        raise EngineError("no default DVC remote: runs share their models and pull their inputs through one. Fix: "
                          "`dvc remote add -d shared URL` (storage every node can reach), commit .dvc/config, push.")
    return Baseline(commit, git_remote, url.stdout.strip())


def check_data(params: Params) -> None:
    """Folder data must be at an absolute path (a run works in a fresh clone, where
    a relative one would not resolve) that exists here; every node mounts it there."""
    if params.data.source != "folder":
        return
    for dataset in params.datasets:
        path = params.data.paths.get(dataset)
        if not path or not Path(path).is_absolute():
            raise ParamsError(f"params: data.paths.{dataset} is {path!r}; the Ray engine needs an absolute path "
                              "that every node mounts (each run works in a fresh clone). Fix: "
                              f"-S data.paths.{dataset}=/data/{dataset}.tar.gz, or data.source=tfds.")
        if not Path(path).exists():
            raise ParamsError(f"params: data.paths.{dataset} = {path} does not exist on this node. Fix: mount "
                              "the data at the same path on every node.")


def existing_runs(baseline: Baseline) -> set[str]:
    """Names of the experiments of the baseline commit on the git remote."""
    prefix = f"refs/exps/{baseline.commit[:2]}/{baseline.commit[2:]}/"
    listed = _git("ls-remote", baseline.url, f"{prefix}*").stdout.splitlines()
    return {line.split("\t")[1][len(prefix):] for line in listed if "\t" in line}


# --- on a worker -------------------------------------------------------------------------

def run_in_clone(run: Run, baseline: Baseline) -> dict:
    """A Ray task: clone, pull inputs, `dvc exp run`, `dvc exp push`. Returns the
    status and the log's tail; never raises for a failed run (the driver decides)."""
    started, work = time.time(), Path(tempfile.mkdtemp(prefix=f"ablation-{run.name}-"))
    repo, log = work / "repo", []

    def step(*command: str, cwd=repo) -> int:
        start = time.time()
        done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log.append(f"$ {' '.join(command)}  # exit {done.returncode} after {time.time() - start:.1f} s")
        log.extend(done.stdout.splitlines())
        return done.returncode

    dvc = (sys.executable, "-m", "dvc")
    status = "failed"
    try:
        if step("git", "clone", "-q", "--no-checkout", baseline.url, str(repo), cwd=work) == 0 and \
                step("git", "checkout", "-q", baseline.commit) == 0:
            if not _git("config", "user.email", cwd=repo, check=False).stdout.strip():
                _git("config", "user.email", "ray-worker@ablation.invalid", cwd=repo)
                _git("config", "user.name", "ablation ray worker", cwd=repo)
            step(*dvc, "pull", "--allow-missing")  # inputs another run or the driver pushed; missing ones are built
            settings = [flag for override in run.overrides for flag in ("-S", override)]
            if step(*dvc, "exp", "run", "-n", run.name, *settings) == 0:
                for attempt in range(PUSH_ATTEMPTS):
                    if step(*dvc, "exp", "push", "--force", "origin", run.name) == 0:
                        status = "done"
                        break
                    time.sleep(2 ** attempt)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"name": run.name, "status": status, "node": socket.gethostname(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "started": started, "ended": time.time(), "log_tail": "\n".join(log[-LOG_TAIL_LINES:])}


# --- the driver --------------------------------------------------------------------------

def execute(runs: list[Run], baseline: Baseline, *, num_gpus: float, num_cpus: float, retries: int,
            logs_dir: Path, poll_seconds: float = 30.0) -> list[dict]:
    """Runs every run on the connected Ray cluster, each up to 1 + `retries` times;
    writes each failed run's log to logs_dir/NAME.log; returns the last result of each."""
    import ray

    task = ray.remote(run_in_clone).options(
        num_gpus=num_gpus, num_cpus=num_cpus,
        max_retries=3)  # Ray resubmits a task whose worker process died (e.g. at start-up)
    slots = max(1, int(min(ray.cluster_resources().get("GPU", 0) // num_gpus if num_gpus else float("inf"),
                           ray.cluster_resources().get("CPU", 1) // num_cpus if num_cpus else float("inf"))))
    pending = {task.remote(run, baseline): (run, 0) for run in runs}
    results, last_print, start = {}, 0.0, time.time()
    logs_dir.mkdir(parents=True, exist_ok=True)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_seconds)
        for ref in ready:
            run, attempt = pending.pop(ref)
            result = ray.get(ref)
            if result["status"] != "done" and attempt < retries:
                print(f"run {run.name} failed on {result['node']} (attempt {attempt + 1}); retrying", flush=True)
                pending[task.remote(run, baseline)] = (run, attempt + 1)
                continue
            results[run.name] = result
            log = inside(logs_dir, f"{run.name}.log")
            gpus = result["cuda_visible_devices"] or "none"
            where = f"on {result['node']} (CUDA_VISIBLE_DEVICES={gpus}) in {result['ended'] - result['started']:.0f} s"
            if result["status"] == "done":
                log.unlink(missing_ok=True)
                print(f"run {run.name} done {where}", flush=True)
            else:
                log.write_text(result["log_tail"] + "\n")
                print(f"run {run.name} FAILED {where}; its log: {log}", flush=True)
            # Where and when each run went, for a look at the cluster's use afterwards.
            (logs_dir / "runs.json").write_text(json.dumps(
                [{k: v for k, v in r.items() if k != "log_tail"} for r in results.values()], indent=2) + "\n")
        if ready or time.time() - last_print >= poll_seconds:
            failed = sum(r["status"] != "done" for r in results.values())
            running = min(len(pending), slots)
            print(console.progress_line(len(results) - failed, running, failed, len(pending) - running,
                                        time.time() - start), flush=True)
            last_print = time.time()
    return [results[run.name] for run in runs]


def pull(names: list[str], baseline: Baseline) -> None:
    """Brings the experiments (git refs, and their models from the DVC remote) into this checkout."""
    for name in names:
        pulled = _dvc("exp", "pull", "--force", baseline.remote, name)
        if pulled.returncode:
            raise EngineError(f"`dvc exp pull {baseline.remote} {name}` failed: {pulled.stderr.strip()[-500:]}")


def run_study(study_arms: list, common_overrides: list[str], *, address: str | None, git_remote: str,
              num_gpus: float | None, num_cpus: float, retries: int, resume: bool, logs_dir: Path) -> list[str]:
    """Checks, submits every run not skipped by `resume`, waits, pulls every run's
    experiment; returns the names of the runs that failed."""
    import ray

    for arm in study_arms:
        check_data(arm.params)
    baseline = check_baseline(git_remote)
    runs = plan(study_arms, common_overrides)
    skipped = existing_runs(baseline) & {run.name for run in runs} if resume else set()
    if skipped:
        print(f"--resume: {len(skipped)} run(s) already have experiments on {git_remote}: "
              + ", ".join(sorted(skipped)), flush=True)
    todo = [run for run in runs if run.name not in skipped]
    ray.init(address=address, log_to_driver=False,
             runtime_env={"py_modules": [str(Path(__file__).parent)]})  # this package, on every node
    if num_gpus is None:  # default: one GPU per run where the cluster has GPUs
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
    print(f"Ray cluster: {ray.cluster_resources()}; {len(todo)} run(s) of baseline {baseline.commit[:8]}, "
          f"{num_gpus} GPU(s) and {num_cpus} CPU(s) each", flush=True)
    results = execute(todo, baseline, num_gpus=num_gpus, num_cpus=num_cpus, retries=retries, logs_dir=logs_dir)
    done = [r["name"] for r in results if r["status"] == "done"]
    pull(sorted(skipped) + done, baseline)
    return [r["name"] for r in results if r["status"] != "done"]
