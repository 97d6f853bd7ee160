"""A Ray cluster, for grids that outgrow one machine. DVC's queue is local by
design, so each run (one arm, one seed) becomes a Ray task that asks for its GPUs
and runs in a fresh clone of the baseline (engines/remote.py). The driver checks
the remotes first, shows progress, keeps failed runs' logs, retries, resumes, and
pulls every run's experiment into this checkout."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ablation.core import console, layout
from ablation.core.layout import StudyFiles, inside
from ablation.core.yaml_text import read_yaml_file
from ablation.study.engines.base import Engine
from ablation.study.engines.remote import (
    Baseline,
    CloneRun,
    check_baseline,
    check_data,
    existing_runs,
    pull,
    run_in_clone,
)
from ablation.study.grid import Arm, dvc_settings

PACKAGE = Path(__file__).parents[2]  # ablation/, shipped to every node


class RayCluster(Engine):
    name = "ray"
    workers = "Ray worker(s)"
    local = False

    def __init__(self, address: str | None = None, git_remote: str = "origin", num_gpus: float | None = None,
                 num_cpus: float = 1, retries: int = 1):
        self.address, self.git_remote = address, git_remote
        self.num_gpus, self.num_cpus, self.retries = num_gpus, num_cpus, retries

    @classmethod
    def add_arguments(cls, parser) -> None:
        group = parser.add_argument_group("Ray engine (--engine ray): one run per arm and seed, on a cluster")
        group.add_argument("--address", help="the Ray cluster (HEAD:6379, or `auto`); default: a new local cluster")
        group.add_argument("--git-remote", default="origin", help="the git remote every node clones from and pushes to")
        group.add_argument("--num-gpus", type=float,
                           help="GPUs per run (default: 1 where the cluster has GPUs, else 0)")
        group.add_argument("--num-cpus", type=float, default=1, help="CPUs per run (default 1)")
        group.add_argument("--retries", type=int, default=1, help="reruns of a failed run before it counts as failed")

    @classmethod
    def from_args(cls, args) -> RayCluster:
        return cls(args.address, args.git_remote, args.num_gpus, args.num_cpus, args.retries)

    def experiments(self, arm: Arm) -> list[Arm]:
        return [arm.seed_arm(seed) for seed in arm.params.train.seeds]

    def log_hint(self, out: StudyFiles) -> str:
        return f"`{out.logs.as_posix()}/{{name}}.log`"

    def submit(self, arms: list[Arm], overrides: list[str], out: StudyFiles, resume: bool) -> None:
        """Checks, submits every run not skipped by `resume`, waits, pulls every run's experiment."""
        self._run([run for arm in arms for run in self.experiments(arm)], overrides, out, resume)

    def run(self, experiments: list[Arm], overrides: list[str], out: StudyFiles, forced: tuple[str, ...] = ()) -> None:
        self._run(experiments, overrides, out, resume=False, forced=forced)

    def _run(self, experiments: list[Arm], overrides: list[str], out: StudyFiles, resume: bool,
             forced: tuple[str, ...] = ()) -> None:
        import ray

        for experiment in experiments:
            check_data(experiment.params)
        baseline = check_baseline(self.git_remote)
        baseline_params = read_yaml_file(layout.PARAMS_FILE)
        runs = [CloneRun(run.name, tuple(dvc_settings((*overrides, *run.overrides), baseline_params)), forced)
                for run in experiments]
        skipped = existing_runs(baseline) & {run.name for run in runs} if resume else set()
        if skipped:
            print(f"--resume: {len(skipped)} run(s) already have experiments on {self.git_remote}: "
                  + ", ".join(sorted(skipped)), flush=True)
        todo = [run for run in runs if run.name not in skipped]
        ray.init(address=self.address, log_to_driver=False, runtime_env={"py_modules": [str(PACKAGE)]},
                 ignore_reinit_error=True)  # --until-decided runs its rounds in one driver
        num_gpus = self.num_gpus
        if num_gpus is None:  # default: one GPU per run where the cluster has GPUs
            num_gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
        print(f"Ray cluster: {ray.cluster_resources()}; {len(todo)} run(s) of baseline {baseline.commit[:8]}, "
              f"{num_gpus} GPU(s) and {self.num_cpus} CPU(s) each", flush=True)
        results = execute(todo, baseline, num_gpus=num_gpus, num_cpus=self.num_cpus, retries=self.retries,
                          logs_dir=out.logs)
        pull(sorted(skipped) + [r["name"] for r in results if r["status"] == "done"], baseline)


def execute(runs: list[CloneRun], baseline: Baseline, *, num_gpus: float, num_cpus: float, retries: int,
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
