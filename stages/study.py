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

from ablation.core import backends, layout
from ablation.core.decisions import Design
from ablation.core.errors import ParamsError
from ablation.report import study_report
from ablation.study import backend_choice, grid, raw_records
from ablation.study.engines.dvc_queue import DvcQueue
from ablation.study.engines.registry import DEFAULT, ENGINES


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
                             "ablation/core/sequential.py) or the seed budget is spent")
    parser.add_argument("--max-seeds", type=int, help="the seed budget per arm of --until-decided "
                                                      "(default: the preset's report.max_seeds)")
    parser.add_argument("--seed-step", type=int, default=1, help="seeds added per arm each round (default 1)")
    parser.add_argument("--rounds", type=int, help="with --until-decided: run at most this many rounds now, then "
                                                   "write the report (the same command goes on later; 0: only the "
                                                   "report of the rounds run so far)")
    parser.add_argument("--max-arms", type=int, default=grid.MAX_ARMS,
                        help=f"refuse a grid of more arms than this (default {grid.MAX_ARMS})")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="grid values for KEY instead of params.yaml's study.grid (repeatable)")
    parser.add_argument("--backend", choices=[*backends.BACKENDS, backend_choice.AUTO],
                        help="the Keras backend the runs train on (default: KERAS_BACKEND, else auto on DVC's "
                             "queue and tensorflow on Ray, whose nodes the driver cannot probe); auto: the backend "
                             "of the study's runs so far, else the installed one a probe measured fastest on this "
                             "machine kind")
    parser.add_argument("--engine", choices=list(ENGINES), default=DEFAULT,
                        help="dvc: DVC's local queue (default); ray: a Ray cluster")
    for engine_type in ENGINES.values():
        engine_type.add_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="run only the arms (Ray: the runs) that left no "
                                                              "results: finished experiments and raw results are kept")
    args = parser.parse_args()
    grid.check_jobs(args.jobs)
    preset = grid.load_preset(args.preset) if args.preset else {"set": [], "grid": {}, "jobs": None,
                                                                  "report": Design()}
    overrides = [*preset["set"], *args.overrides]  # the command line wins
    params = grid.load_study_params(args.params, overrides, preset["grid"], args.grid)
    arms = grid.arms(params, args.max_arms)
    args.jobs = args.jobs or preset["jobs"] or 1
    engine = ENGINES[args.engine].from_args(args)
    out = layout.StudyFiles(grid.study_name(args.name, args.preset, params.study.grid, overrides))
    print(f"study {out.name} ({out.dir}/), arms: " + ", ".join(a.name for a in arms), flush=True)
    loaded = os.environ.get("KERAS_BACKEND", "tensorflow")  # this process's Keras
    rates = {}
    if not (args.report_only or args.verify):  # DVC's queue and Ray's tasks train on KERAS_BACKEND
        probed = [*overrides, *arms[0].overrides]
        requested = args.backend or backend_choice.default(engine.local)
        backend, rates, lines = backend_choice.choose(
            requested, args.params, probed, kept=lambda: backend_choice.study_backend(raw_records.train_records(out)))
        if args.dry_run and backend != loaded and backend not in rates:  # estimate with the runs' backend
            rates[backend] = backend_choice.probe(backend, args.params, probed)
        print("\n".join(lines), flush=True)
        os.environ["KERAS_BACKEND"] = backend
    if args.dry_run:
        from ablation.study import dry_run
        print("\n".join(dry_run.plan(arms, engine, jobs=args.jobs,
                                     rate=rates.get(os.environ.get("KERAS_BACKEND", loaded)))))
        if out.runs.is_dir():  # a study with committed results: what more seeds would decide
            committed = grid.collect(arms, out, engine, experiments=False)
            print("\n" + "\n".join(study_report.seeds_plan(committed, preset["report"],
                                                           grid.reproducing_command(sys.argv[1:]))))
        return
    if args.verify:
        from ablation.study import verify
        verdicts = verify.rerun_and_judge(arms, overrides, out, args.verify)
        print("\n\n".join(map(str, verdicts)))
        if not all(v.agrees for v in verdicts):  # a disagreement, or a check that could not tell
            raise SystemExit(1)
        return
    owner = raw_records.definition(arms, overrides)
    raw_records.check_owner(out, owner, args.replace_report)
    if args.until_decided:
        from ablation.study import until_decided
        if engine.name != DvcQueue.name or args.report_only or args.seed_step < 1 \
                or (args.rounds is not None and args.rounds < 0):
            raise ParamsError("--until-decided runs seeds in rounds on DVC's queue, with --seed-step 1 or more "
                              "and --rounds 0 or more. Fix: drop --engine ray and --report-only, or --until-decided.")
        results, looks = until_decided.run_rounds(arms, overrides, out, preset["report"], args.max_seeds,
                                                  args.seed_step, args.jobs, args.rounds, study_report.decisions_for)
        preset["report"] = dataclasses.replace(preset["report"], looks=tuple(looks))
    elif not args.report_only:
        engine.submit(arms, overrides, out, args.resume)
    if not args.until_decided:
        results = grid.collect(arms, out, engine)
        for written in grid.save_raw(results, out):
            print(f"raw results: {written}", flush=True)
    if not args.until_decided and (looks := raw_records.recorded_looks(out)):  # run in rounds before
        preset["report"] = dataclasses.replace(preset["report"], looks=looks)
    command = grid.reproducing_command(sys.argv[1:])
    log_hint = engine.log_hint(out)
    text = study_report.write_study_report(results, out, command, log_hint, replace=args.replace_report,
                                           design=preset["report"])
    print("\n".join(study_report.headline(text)))
    raw_records.record_owner(out, owner, preset["report"].looks)
    print(f"wrote {out.report}, {out.figures}/, {out.metrics} and {out.dvc_yaml}; commit {out.dir} to keep them")
    missing = [name for r in results for name in r.missing]
    if missing:
        where = log_hint.format(name="NAME")
        raise SystemExit(f"error: runs {missing} left no results. Fix: read {where}, fix the cause, then rerun "
                         "with --resume.")


if __name__ == "__main__":
    _cli.main_guarded(main)
