"""DVC's experiment queue on this machine, the default engine: each arm is one
experiment that trains all its seeds; `--jobs` queue workers run them."""
from __future__ import annotations

import threading
from datetime import datetime

from ablation.core import console, layout
from ablation.core.layout import StudyFiles
from ablation.core.params import ParamsError
from ablation.core.yaml_text import read_yaml_file
from ablation.study import raw_records
from ablation.study.collecting import collect
from ablation.study.engines.base import Engine
from ablation.study.grid import Arm, dvc_settings
from ablation.study.repo import (
    busy_queue,
    captured,
    check_repository,
    dvc,
    experiment_commits,
    queue_states,
    read_file,
)

LOG_HINT = "`dvc queue logs {name}`"
PROGRESS_EVERY = 30.0  # seconds between progress lines
WORKER_GRACE = 60.0  # seconds a queue worker may outlive the study's last run before it is stopped


class DvcQueue(Engine):
    name = "dvc"
    workers = "queue worker(s)"
    local = True

    def __init__(self, jobs: int = 1):
        self.jobs = jobs
        self.walls = {}

    @classmethod
    def from_args(cls, args) -> DvcQueue:
        return cls(args.jobs or 1)

    def experiments(self, arm: Arm) -> list[Arm]:
        return [arm]

    def submit(self, arms: list[Arm], overrides: list[str], out: StudyFiles, resume: bool) -> None:
        todo = arms
        if resume:  # finished experiments and committed raw results are kept
            todo = [arm for arm, r in zip(arms, collect(arms, out, self)) if r.failed]
            print(f"resume: {len(arms) - len(todo)} of {len(arms)} arm(s) have results; running "
                  f"{', '.join(a.name for a in todo) or 'none'}", flush=True)
        if todo:
            self.walls.update(queue(todo, overrides, self.jobs, estimates=self.estimates))

    def run(self, experiments: list[Arm], overrides: list[str], out: StudyFiles, forced: tuple[str, ...] = ()) -> None:
        self.walls.update(queue(experiments, overrides, self.jobs, forced, self.estimates))

    def log_hint(self, out: StudyFiles) -> str:
        return LOG_HINT


def queue(study_arms: list[Arm], common_overrides: list[str], jobs: int, forced: tuple[str, ...] = (),
          estimates: dict[str, float | None] | None = None) -> dict[str, float]:
    """Queues every arm (replacing earlier experiments of the same name), runs the
    queue and returns the finished experiments' wall seconds. `estimates`
    ({experiment: seconds}) make the progress ETA. `forced`: stages run even when
    DVC holds their outputs (a rerun to check:
    neither the baseline's lock nor DVC's run-cache may stand in for it). Refused
    while the queue still runs anything: queuing beside it would race or remove it."""
    check_repository()
    if busy := busy_queue():
        raise ParamsError(f"DVC's queue still has {', '.join(busy)} queued or running (another study's, or this "
                          "one's from a start that was interrupted), and a study never races or replaces them. Fix: "
                          "wait for them (`dvc queue status`) or stop them (`dvc queue kill NAME`), then rerun with "
                          "--resume.")
    commits = experiment_commits()
    existing = set(commits) & {arm.name for arm in study_arms}
    by_name = {arm.name: arm for arm in study_arms}
    for name in sorted(existing):  # another study's experiment of the same name is never removed
        differ = raw_records.params_differ(read_file(commits[name], layout.PARAMS_FILE), by_name[name].params,
                                           f"params.yaml of experiment {name}")
        if differ:
            raise ParamsError(f"experiment {name} already exists and ran with other params ({', '.join(differ[:3])}"
                              f"{', ...' if len(differ) > 3 else ''}): another study's, so it is left as it is. "
                              f"Fix: run from a checkout without it, or remove it yourself (`dvc exp remove {name}`).")
    if existing:
        dvc("exp", "remove", *sorted(existing))
    baseline = read_yaml_file(layout.PARAMS_FILE)
    queued_since = datetime.now().replace(microsecond=0)  # DVC stamps its tasks to the second
    for arm in study_arms:
        settings = [flag for o in dvc_settings([*common_overrides, *arm.overrides], baseline) for flag in ("-S", o)]
        dvc("exp", "run", "--queue", "-n", arm.name, *settings, *(("--force", *forced) if forced else ()))
    released = threading.Event()

    def release() -> None:  # every run has ended: the worker is stopped, whatever exit code it then gives
        released.set()
        captured("dvc", "queue", "stop")
    with console.queue_progress([arm.name for arm in study_arms], lambda: queue_states(queued_since),
                                every=PROGRESS_EVERY, release=release, grace=WORKER_GRACE, estimates=estimates,
                                jobs=jobs) as walls:
        dvc("exp", "run", "--run-all", "--jobs", str(jobs), check_when=lambda: not released.is_set())
    return walls
