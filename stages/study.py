"""Run the whole ablation grid (`study.grid` in params.yaml) as named DVC experiments
through DVC's queue (one machine) or a Ray cluster (many), then write the study's
folder reports/NAME/: study.md comparing the arms, its figures, the raw results
of every run (runs/) and what DVC shows of it (metrics.json, plots/, dvc.yaml).

    python -m stages.study [--jobs N] [-S key=value ...]   # -S applies to every arm
    python -m stages.study --grid model.depth=20,32        # replaces study.grid's values of a key
    python -m stages.study --preset studies/cifar10-cpu.yaml   # a committed study: its -S, grid and jobs
    python -m stages.study --preset studies/cifar10-cpu.yaml --report-only   # from experiments or runs/
    python -m stages.study --preset studies/cifar10-cpu.yaml --verify resnet-cifar20-s0   # rerun, compare
    python -m stages.study --engine ray --address HEAD:6379    # one experiment per arm and seed, on Ray
    python -m stages.study --preset studies/cifar10-cpu.yaml --dry-run   # list and check the arms, run nothing
    python -m stages.study --preset studies/cifar10-cpu.yaml --until-decided --max-seeds 6   # seeds in rounds
"""
from stages import _cli  # first: it checks KERAS_BACKEND before anything loads Keras

import dataclasses
import os
import sys

from ablation import backend_choice, backends, layout, study, study_files, study_report
from ablation.decisions import Design
from ablation.errors import ParamsError


def main():
    parser = _cli.parser(__doc__)
    parser.add_argument("--jobs", type=int, default=None,
                        help="experiments run in parallel (default 1, or the preset's)")
    parser.add_argument("--preset", help="a study file (studies/*.yaml): -S values, grid and jobs; "
                                         "command-line -S/--grid/--jobs still apply on top")
    parser.add_argument("--name", help="the study's folder in reports/ (default: the preset's file name, or the grid's "
                                       "keys and a hash of grid and -S values)")
    parser.add_argument("--report-only", action="store_true",
                        help="only write the report, from finished experiments or the committed raw results")
    parser.add_argument("--verify", metavar="ARM[-sSEED]",
                        help="rerun one committed run (default: the arm's first seed) and compare it with the record")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and build every arm, print its experiments with estimated times, run nothing")
    parser.add_argument("--replace-report", action="store_true",
                        help="write the study's study.md even when arms that have results there left none here")
    parser.add_argument("--until-decided", action="store_true",
                        help="add seeds in rounds until the primary contrasts are decided (group-sequential, "
                             "ablation/sequential.py) or the seed budget is spent")
    parser.add_argument("--max-seeds", type=int, help="the seed budget per arm of --until-decided "
                                                      "(default: the preset's report.max_seeds)")
    parser.add_argument("--seed-step", type=int, default=1, help="seeds added per arm each round (default 1)")
    parser.add_argument("--rounds", type=int, help="with --until-decided: run at most this many rounds now, then "
                                                   "write the report (the same command goes on later; 0: only the "
                                                   "report of the rounds run so far)")
    parser.add_argument("--max-arms", type=int, default=study.MAX_ARMS,
                        help=f"refuse a grid of more arms than this (default {study.MAX_ARMS})")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="grid values for KEY instead of params.yaml's study.grid (repeatable)")
    parser.add_argument("--backend", choices=[*backends.BACKENDS, backend_choice.AUTO],
                        help="the Keras backend the runs train on (default: KERAS_BACKEND, else auto on DVC's "
                             "queue and tensorflow on Ray, whose nodes the driver cannot probe); auto: the backend "
                             "of the study's runs so far, else the installed one a probe measured fastest on this "
                             "machine kind")
    ray = parser.add_argument_group("Ray engine (--engine ray): one run per arm and seed, on a cluster")
    parser.add_argument("--engine", choices=["dvc", "ray"], default="dvc",
                        help="dvc: DVC's local queue (default); ray: a Ray cluster")
    ray.add_argument("--address", help="the Ray cluster (HEAD:6379, or `auto`); default: a new local cluster")
    ray.add_argument("--git-remote", default="origin", help="the git remote every node clones from and pushes to")
    ray.add_argument("--num-gpus", type=float, help="GPUs per run (default: 1 where the cluster has GPUs, else 0)")
    ray.add_argument("--num-cpus", type=float, default=1, help="CPUs per run (default 1)")
    ray.add_argument("--retries", type=int, default=1, help="reruns of a failed run before it counts as failed")
    parser.add_argument("--resume", action="store_true", help="run only the arms (Ray: the runs) that left no "
                                                              "results: finished experiments and raw results are kept")
    args = parser.parse_args()
    study.check_jobs(args.jobs)
    preset = study.load_preset(args.preset) if args.preset else {"set": [], "grid": {}, "jobs": None,
                                                                  "report": Design()}
    overrides = [*preset["set"], *args.overrides]  # the command line wins
    params = study.load_study_params(args.params, overrides, preset["grid"], args.grid)
    arms = study.arms(params, args.max_arms)
    out = layout.StudyFiles(study.study_name(args.name, args.preset, params.study.grid, overrides))
    print(f"study {out.name} ({out.dir}/), arms: " + ", ".join(a.name for a in arms), flush=True)
    on_ray = args.engine == "ray"
    loaded = os.environ.get("KERAS_BACKEND", "tensorflow")  # this process's Keras
    rates = {}
    if not (args.report_only or args.verify):  # DVC's queue and Ray's tasks train on KERAS_BACKEND
        probed = [*overrides, *arms[0].overrides]
        requested = args.backend or backend_choice.default(on_ray)
        backend, rates, lines = backend_choice.choose(
            requested, args.params, probed, kept=lambda: backend_choice.study_backend(study_files.train_records(out)))
        if args.dry_run and backend != loaded and backend not in rates:  # estimate with the runs' backend
            rates[backend] = backend_choice.probe(backend, args.params, probed)
        print("\n".join(lines), flush=True)
        os.environ["KERAS_BACKEND"] = backend
    if args.dry_run:
        from ablation import dry_run
        print("\n".join(dry_run.plan(arms, per_seed=on_ray, jobs=args.jobs or preset["jobs"] or 1,
                                     rate=rates.get(os.environ.get("KERAS_BACKEND", loaded)))))
        if out.runs.is_dir():  # a study with committed results: what more seeds would decide
            committed = study.collect(arms, out, per_seed=on_ray, experiments=False)
            print("\n" + "\n".join(study_report.seeds_plan(committed, preset["report"],
                                                           study.reproducing_command(sys.argv[1:]))))
        return
    if args.verify:
        from ablation import verify
        verdicts = verify.rerun_and_judge(arms, overrides, out, args.verify)
        print("\n\n".join(map(str, verdicts)))
        if not all(v.agrees for v in verdicts):  # a disagreement, or a check that could not tell
            raise SystemExit(1)
        return
    owner = study_files.definition(arms, overrides)
    study_files.check_owner(out, owner, args.replace_report)
    if args.until_decided:
        from ablation import until_decided
        if on_ray or args.report_only or args.seed_step < 1 or (args.rounds is not None and args.rounds < 0):
            raise ParamsError("--until-decided runs seeds in rounds on DVC's queue, with --seed-step 1 or more "
                              "and --rounds 0 or more. Fix: drop --engine ray and --report-only, or --until-decided.")
        results, looks = until_decided.run(arms, overrides, out, preset["report"], args.max_seeds, args.seed_step,
                                           args.jobs or preset["jobs"] or 1, args.rounds)
        preset["report"] = dataclasses.replace(preset["report"], looks=tuple(looks))
    elif not args.report_only and on_ray:
        from ablation import ray_engine  # Ray only where it is used
        ray_engine.run_study(arms, overrides, address=args.address, git_remote=args.git_remote,
                             num_gpus=args.num_gpus, num_cpus=args.num_cpus, retries=args.retries,
                             resume=args.resume, logs_dir=out.logs)
    elif not args.report_only:
        todo = arms
        if args.resume:  # finished experiments and committed raw results are kept
            todo = [arm for arm, r in zip(arms, study.collect(arms, out)) if r.failed]
            print(f"resume: {len(arms) - len(todo)} of {len(arms)} arm(s) have results; running "
                  f"{', '.join(a.name for a in todo) or 'none'}", flush=True)
        if todo:
            study.run(todo, overrides, args.jobs or preset["jobs"] or 1)
    if not args.until_decided:
        results = study.collect(arms, out, per_seed=on_ray)
        for written in study.save_raw(results, out):
            print(f"raw results: {written}", flush=True)
    if not args.until_decided and (looks := study_files.recorded_looks(out)):  # run in rounds before
        preset["report"] = dataclasses.replace(preset["report"], looks=looks)
    command = study.reproducing_command(sys.argv[1:])
    log_hint = f"`{out.logs.as_posix()}/{{name}}.log`" if on_ray else study_report.QUEUE_LOG_HINT
    text = study_report.write_study_report(results, out, command, log_hint, replace=args.replace_report,
                                           design=preset["report"])
    print("\n".join(study_report.headline(text)))
    study_files.record_owner(out, owner, preset["report"].looks)
    print(f"wrote {out.report}, {out.figures}/, {out.metrics} and {out.dvc_yaml}; commit {out.dir} to keep them")
    missing = [name for r in results for name in r.missing]
    if missing:
        where = f"{out.logs}/NAME.log" if on_ray else "`dvc queue logs NAME`"
        rerun = "rerun with --resume"
        raise SystemExit(f"error: runs {missing} left no results. Fix: read {where}, fix the cause, then {rerun}.")


if __name__ == "__main__":
    _cli.run(main)
