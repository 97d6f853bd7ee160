"""Runs in fresh clones of the study's baseline commit, shared through remotes: each
run (one arm, one seed) clones the baseline from the shared git remote, pulls its
inputs from the DVC remote, runs `dvc exp run` as a subprocess (its GPU memory is
freed when it exits) and shares the experiment with `dvc exp push`, DVC's
documented way to move experiments between machines; the driver checks the
remotes first and `dvc exp pull`s every run, so that `dvc exp show`, `dvc metrics
diff` and the study report work as after a local study. What an engine that runs
on other machines needs, whoever schedules the runs (engines/ray.py)."""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ablation.core import reading
from ablation.core.errors import UserError
from ablation.core.params import Params, ParamsError
from ablation.study.repo import captured, git

LOG_TAIL_LINES = 200
PUSH_ATTEMPTS = 4  # concurrent `dvc exp push`es to one git remote can race on its ref locks


class EngineError(UserError):
    """The cluster or the remotes are not ready for the study; the message names the fix."""


@dataclass(frozen=True)
class CloneRun:
    """One experiment to run in a clone: its name, every `-S` setting it runs with and
    the stages forced to run (a --verify rerun)."""
    name: str
    overrides: tuple[str, ...]
    forced: tuple[str, ...] = ()


# --- before submitting ---------------------------------------------------------------

@dataclass(frozen=True)
class Baseline:
    commit: str
    remote: str  # the git remote's name here
    url: str     # what the workers clone


def check_baseline(git_remote: str) -> Baseline:
    """The runs clone the baseline commit from the git remote and push their
    experiments back, with the DVC remote for data: all three must be in place."""
    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    if dirty:
        raise EngineError("uncommitted changes to tracked files (" + ", ".join(
            line[3:] for line in dirty.splitlines()[:5]) + "): each run clones the baseline commit and would not "
            f"see them. Fix: commit them and `git push {git_remote}`.")
    commit = git("rev-parse", "HEAD").strip()
    url = captured("git", "remote", "get-url", git_remote)
    if url.returncode:
        raise EngineError(f"no git remote named {git_remote!r}: the workers clone the baseline from it. Fix: "
                          f"`git remote add {git_remote} URL` (a repository every node can reach), or --git-remote.")
    if captured("git", "fetch", "-q", git_remote).returncode:
        raise EngineError(f"git remote {git_remote!r} ({url.stdout.strip()}) cannot be fetched from here. "
                          "Fix: check the URL and your access to it.")
    if not git("for-each-ref", "--contains", commit, f"refs/remotes/{git_remote}").strip():
        raise EngineError(f"the baseline commit {commit[:8]} is not on the git remote {git_remote!r}, so the "
                          f"workers cannot clone it. Fix: `git push {git_remote} HEAD`.")
    default = captured("dvc", "remote", "default")
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
    listed = git("ls-remote", baseline.url, f"{prefix}*").splitlines()
    return {line.split("\t")[1][len(prefix):] for line in listed if "\t" in line}


# --- on a worker -------------------------------------------------------------------------

def run_in_clone(run: CloneRun, baseline: Baseline) -> dict:
    """A Ray task: clone, pull inputs, `dvc exp run`, `dvc exp push`. Returns the
    status and the log's tail; never raises for a failed run (the driver decides)."""
    started, work = time.time(), Path(tempfile.mkdtemp(prefix=f"ablation-{run.name}-"))
    repo, log = work / "repo", []

    def step(*command: str, cwd=repo) -> int:
        start = time.time()
        done = reading.command_output(list(command), cwd=cwd)
        log.append(f"$ {' '.join(command)}  # exit {done.returncode} after {time.time() - start:.1f} s")
        log.extend((done.stdout + done.stderr).splitlines())
        return done.returncode

    dvc = (sys.executable, "-m", "dvc")
    status = "failed"
    try:
        if step("git", "clone", "-q", "--no-checkout", baseline.url, str(repo), cwd=work) == 0 and \
                step("git", "checkout", "-q", baseline.commit) == 0:
            if not captured("git", "config", "user.email", cwd=repo).stdout.strip():
                git("config", "user.email", "ray-worker@ablation.invalid", cwd=repo)
                git("config", "user.name", "ablation ray worker", cwd=repo)
            step(*dvc, "pull", "--allow-missing")  # inputs another run or the driver pushed; missing ones are built
            settings = [flag for override in run.overrides for flag in ("-S", override)]
            forced = ("--force", *run.forced) if run.forced else ()
            if step(*dvc, "exp", "run", "-n", run.name, *settings, *forced) == 0:
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


# --- after the runs ------------------------------------------------------------------

def pull(names: list[str], baseline: Baseline) -> None:
    """Brings the experiments (git refs, and their models from the DVC remote) into this checkout."""
    for name in names:
        pulled = captured("dvc", "exp", "pull", "--force", baseline.remote, name)
        if pulled.returncode:
            raise EngineError(f"`dvc exp pull {baseline.remote} {name}` failed: {pulled.stderr.strip()[-500:]}")
