"""The git and DVC repository a study runs in: its experiments (git refs), a file of
an experiment's commit, DVC's queue, and the dvc and git commands the study calls,
each failure said in one line."""
from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from ablation.core import console, reading
from ablation.core.errors import DataError, UserError

STUDY_LOCK = Path(".dvc/tmp/ablate-study.lock")  # beside DVC's queue, which it guards


def dvc(*args: str, check: bool = True, check_when=lambda: True) -> int:
    """Runs `dvc ARGS` in this environment, its output to the terminal (less its noise,
    ablation/core/console.py); returns its exit code. With `check`, a failure raises
    unless `check_when()` says by then that it is expected (a worker stopped)."""
    print("$ dvc " + " ".join(args), flush=True)
    code = console.run_filtered([sys.executable, "-m", "dvc", *args])
    if check and code and check_when():
        raise DataError(f"`dvc {' '.join(args[:3])} ...` failed (exit {code}); its own message is above. "
                        "Fix: correct what it names (a damaged dvc.lock: `git checkout -- dvc.lock`; not a git or "
                        "DVC repository: run in a git clone with `dvc init`), then rerun with --resume.")
    return code


def captured(tool: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    """`git ARGS` or `dvc ARGS` (this environment's) with its output captured, whatever its exit code."""
    command = ["git"] if tool == "git" else [sys.executable, "-m", "dvc"]
    return reading.command_output([*command, *args], cwd=cwd)


def git(*args: str, cwd=None) -> str:
    """`git ARGS`'s output; CalledProcessError when it fails."""
    done = captured("git", *args, cwd=cwd)
    done.check_returncode()
    return done.stdout


def experiment_commits() -> dict[str, str]:
    """Experiment name -> commit, from DVC's refs (refs/exps/<baseline>/<name>); none
    outside a git repository (a copy of the project: only raw results are read)."""
    try:
        lines = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").splitlines()
    except subprocess.CalledProcessError:
        return {}
    return {ref.rsplit("/", 1)[-1]: sha for ref, sha in (line.split() for line in lines)
            if not ref.startswith("refs/exps/celery") and "/exec/" not in ref}


def busy_queue() -> list[str]:
    """The experiments DVC's queue still has queued or running: another study's, or this
    one's left running by a driver that was killed (its queue workers go on)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    try:
        with Repo(".") as repo:
            return [task.get("name") or task["rev"][:7] for task in repo.experiments.celery_queue.status()
                    if task["status"] in ("Queued", "Running")]
    except NotDvcRepoError:
        return []


def queue_states(since: datetime) -> dict[str, str]:
    """{experiment name: DVC's task status} of the tasks queued since `since` (local
    time, as DVC stamps them): Queued, Running, Success or Failed."""
    from dvc.repo import Repo
    with Repo(".") as repo:
        return {task["name"]: task["status"] for task in repo.experiments.celery_queue.status()
                if task.get("name") and task["timestamp"] >= since}


def check_repository() -> None:
    """A study runs in a git repository with a commit: else one line saying how to make one."""
    try:
        git("rev-parse", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise DataError("a study runs its arms as DVC experiments of a git commit, and this is not a git repository "
                        "with one. Fix: run it in a git clone of the project (or `git init && git add -A && git "
                        "commit -m base && dvc init`); --report-only needs no repository.") from None


def read_file(commit: str, path: str) -> str | None:
    """A file of a commit, through the one reader's bound on a record; None where the
    commit has none. An experiment pulled from elsewhere may hold anything."""
    shown = reading.command_output(["git", "show", f"{commit}:{path}"], "record")
    if shown.returncode == -1:
        raise DataError(f"{path} of experiment commit {commit[:7]} is over {reading.LIMITS['record']:,} bytes, "
                        "more than a run's record holds. Fix: remove that experiment (`dvc exp remove "
                        f"--rev {commit[:7]}`) and rerun its arm.")
    return shown.stdout if shown.returncode == 0 else None


@contextlib.contextmanager
def study_lock():
    """Held while a study runs: a second study in the same project (DVC queue) stops at
    once, where checking the queue first would let two started in the same second
    both pass. An OS lock (flock), so a killed study leaves none behind. Outside a
    DVC project (a report from a copy of the raw results) there is no queue to guard."""
    if not STUDY_LOCK.parent.parent.is_dir():
        yield
        return
    STUDY_LOCK.parent.mkdir(exist_ok=True)
    with open(STUDY_LOCK, "a+") as handle:  # a+: never truncates the holder's pid before the lock is ours
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = (reading.read_text(STUDY_LOCK, "record", "", optional=True) or "").strip()[:20]
            raise UserError(f"another study is running in this project (process {holder or 'unknown'}), and two "
                            "would race on DVC's queue. Fix: wait for it to end (or stop it with Ctrl-C), then run "
                            "this one; `--dry-run` works meanwhile.") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
