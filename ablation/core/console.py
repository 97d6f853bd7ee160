"""What a terminal shows of long work: start-up noise moved into a log, and a study's
progress on DVC's queue.

TensorFlow 2.21 prints its C++ info lines (oneDNN, cpu_feature_guard) at import
whatever TF_CPP_MIN_LOG_LEVEL says, and DVC prints "No file hash info found" for
each untracked output of a queued experiment. Neither tells the user anything: they
go to .cache/logs/noise.log, never lost. Info lines TensorFlow logs later (tf.data's
buffer size) obey TF_CPP_MIN_LOG_LEVEL, which the stages set to 1 (warnings and errors
still shown). ABLATION_VERBOSE=1 shows them all."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\] "  # glog info lines; W and E lines stay visible
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|No file hash info found for .* It won't be created\."
    r"|Queueing with overrides '.*'\.)")  # the driver's own `$ dvc exp run --queue -n NAME -S ...` line says it
NOISE_LOG = Path(".cache", "logs", "noise.log").absolute()  # the project's (working directory's) .cache/


def verbose() -> bool:
    return os.environ.get("ABLATION_VERBOSE", "") not in ("", "0")


def is_noise(line: str) -> bool:
    return not verbose() and bool(NOISE.match(line.strip()))


def _keep(lines: list[str]) -> None:
    if lines:
        NOISE_LOG.parent.mkdir(parents=True, exist_ok=True)
        with NOISE_LOG.open("a", encoding="utf-8") as log:
            log.writelines(line if line.endswith("\n") else line + "\n" for line in lines)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Within the block, what C++ code writes to file descriptor 2 is held in a
    temporary file; afterwards the noise goes to the log and the rest to stderr."""
    if verbose():
        yield
        return
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            _keep([line for line in lines if is_noise(line)])
            os.write(2, "".join(line for line in lines if not is_noise(line)).encode())


def run_filtered(command: list[str]) -> int:
    """Runs `command`, its output (stdout and stderr, in order) to stdout as it comes,
    less the noise (to the log); returns its exit code."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", bufsize=1) as process:
        for line in process.stdout:
            if is_noise(line):
                _keep([line])
            else:
                print(line, end="", flush=True)
    return process.returncode


def progress_line(done: int, running: int, failed: int, queued: int, elapsed: float,
                  eta: float | None = None) -> str:
    """One line of a study's progress. `eta`: seconds left as the experiments'
    estimates say (estimated_eta); without it, the rate measured so far (finished
    runs per second, all workers together) applied to what is left."""
    line = f"study progress: {done} done, {running} running, {failed} failed, {queued} queued; " \
           f"{elapsed / 60:.1f} min elapsed"
    left = running + queued
    if left and eta is not None:
        line += f"; ETA {eta / 60:.1f} min" + (" (estimates scaled by the finished runs' pace)" if done else
                                               " (the dry run's estimates)")
    elif done and left:
        line += f"; ETA {left * elapsed / done / 60:.1f} min at the rate so far"
    elif left:
        line += "; ETA once the first run finishes"
    return line


def estimated_eta(estimates: dict[str, float], started: dict[str, float], walls: dict[str, float],
                  ended: set[str], now: float, jobs: int) -> float:
    """Seconds left: each experiment's estimate that has not `ended` (what is left of
    it, for one that has `started`), spread over `jobs` workers and scaled by how the
    finished ones' wall times (`walls`) compared with their estimates."""
    timed = [name for name in walls if estimates.get(name)]
    pace = sum(walls[name] for name in timed) / sum(estimates[name] for name in timed) if timed else 1.0
    left = sum(max(estimates[name] * pace - (now - started[name] if name in started else 0), 0)
               for name in estimates if name not in ended)
    return left / max(jobs, 1)


FINISHED = ("Success", "Failed")  # DVC's task states of a run that has ended


@contextlib.contextmanager
def queue_progress(names: list[str], status: Callable[[], dict[str, str]], every: float = 30.0,
                   release: Callable[[], None] | None = None, grace: float = 60.0,
                   estimates: dict[str, float] | None = None, jobs: int = 1) -> Iterator[dict[str, float]]:
    """Prints a progress line every `every` seconds while the block runs DVC's queue,
    and yields {experiment: wall seconds} of those that ended successfully, filled as
    they end (each start and end placed midway between the polls that saw it).
    `status` maps experiment names to DVC's task status (Queued, Running, Success,
    Failed); the experiments of `names` not in it yet count as queued. `estimates`
    ({experiment: seconds}, the dry run's) make the ETA. When every run
    has ended and the block still waits `grace` seconds later (DVC's queue worker can
    outlive its work: its monitor thread died once with a JSONDecodeError), `release`
    is called once to stop the worker, so the study goes on to its report."""
    stop, start = threading.Event(), time.monotonic()
    started, walls, ended = {}, {}, set()

    def observe(states: dict[str, str], seen: float) -> None:
        for name in names:
            state = states.get(name)
            if state in ("Running", *FINISHED) and name not in started:
                started[name] = seen
                if state in FINISHED:  # began and ended between two polls: its wall time is unknown
                    ended.add(name)
            if state in FINISHED and name not in ended:
                ended.add(name)
                if state == "Success":
                    walls[name] = seen - started[name]

    def report() -> None:
        ended_since, polled = None, start  # when every run was first seen ended; the poll before this one
        while not stop.wait(every):
            try:
                states = status()
            except Exception as error:  # the queue's own state is unreadable for a moment
                print(f"study progress: queue status unavailable ({type(error).__name__})", flush=True)
                continue
            now = time.monotonic()
            observe(states, (polled + now) / 2)
            polled = now
            counts = {kind: sum(states.get(name) == kind for name in names)
                      for kind in ("Success", "Running", "Failed")}
            eta = estimated_eta({n: estimates[n] for n in names}, started, walls, ended, now, jobs) \
                if estimates and all(estimates.get(n) for n in names) else None
            print(progress_line(counts["Success"], counts["Running"], counts["Failed"],
                                len(names) - sum(counts.values()), now - start, eta), flush=True)
            ended_since = (ended_since or now) if len(ended) == len(names) else None
            if release is not None and ended_since is not None and now - ended_since >= grace:
                print(f"study progress: every run ended {now - ended_since:.0f} s ago but DVC's "
                      "queue worker has not exited; stopping it (`dvc queue stop`)", flush=True)
                release()
                return

    thread = threading.Thread(target=report, name="queue-progress", daemon=True)
    thread.start()
    try:
        yield walls
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(Exception):  # the runs that ended since the last poll ended by now
            observe(status(), time.monotonic())
