"""Run the whole ablation grid (`study.grid` in params.yaml) as named DVC experiments
through DVC's queue (one machine) or a Ray cluster (many), then write the study's
folder reports/NAME/: study.md comparing the arms, its figures, the raw results
of every run (runs/) and what DVC shows of it (metrics.json, plots/, dvc.yaml).

    ablate study [--jobs N] [-S key=value ...]   # -S applies to every arm
    ablate study --grid model.depth=20,32        # replaces study.grid's values of a key
    ablate study --preset studies/cifar10-cpu.yaml   # a committed study: its -S, grid and jobs
    ablate study --preset studies/cifar10-cpu.yaml --report-only   # from experiments or runs/
    ablate study --preset studies/cifar10-cpu.yaml --verify resnet-cifar20-s0   # rerun, compare
    ablate study --preset studies/cifar10-cpu.yaml --verify resnet-cifar20 --seeds 4   # replicate, TOST
    ablate study --engine ray --address HEAD:6379    # one experiment per arm and seed, on Ray
    ablate study --preset studies/cifar10-cpu.yaml --dry-run   # list and check the arms, run nothing
    ablate study --preset studies/cifar10-cpu.yaml --until-decided --max-seeds 6   # seeds in rounds
"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

import dataclasses
import os
import sys
from typing import NamedTuple

from ablation.core import backends, layout
from ablation.core.errors import ParamsError
from ablation.report import study_report
from ablation.study import backend_choice, grid, overhead, raw_records, replication, repo
from ablation.study.collecting import collect, save_raw
from ablation.study.deciding.decisions import Design
from ablation.study.engines.base import Engine
from ablation.study.engines.registry import DEFAULT, ENGINES


def parser():
    parser = common.parser(__doc__)  # the function's name, shadowed: its one local
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
    parser.add_argument("--seeds", type=int, help="with --verify: rerun this many seeds of the arm and decide by an "
                                                  "equivalence test against the record (TOST; on any machine kind)")
    parser.add_argument("--margin", type=float, default=replication.DEFAULT_MARGIN,
                        help=f"with --seeds: the equivalence margin in test accuracy (default "
                             f"{replication.DEFAULT_MARGIN:g}, ablation/study/replication.py says why)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and build every arm, print its experiments with estimated times, run nothing")
    parser.add_argument("--replace-report", action="store_true",
                        help="write the study's study.md even when arms that have results there left none here")
    parser.add_argument("--until-decided", action="store_true",
                        help="add seeds in rounds until the primary contrasts are decided (group-sequential, "
                             "ablation/study/deciding/sequential.py) or the seed budget is spent")
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
    return parser


class Study(NamedTuple):
    """A study as the command line asks for it."""
    args: object
    overrides: list[str]  # the preset's -S, then the command line's
    arms: list[grid.Arm]
    engine: Engine
    out: layout.StudyFiles
    design: Design  # the preset's report:


def setup(args) -> Study:
    """The preset, params, arms, engine and folder of the study; refused before anything runs where bad."""
    grid.check_jobs(args.jobs)
    if args.seeds is not None and (not args.verify or not 2 <= args.seeds <= replication.MAX_SEEDS
                                   or not 0 < args.margin < 1):
        raise ParamsError(f"--seeds {args.seeds} --margin {args.margin:g}: replication reruns 2 to "
                          f"{replication.MAX_SEEDS} seeds of the arm --verify names, against a margin between 0 and 1. "
                          "Fix: pass --verify ARM --seeds K (K from its plain --verify's plan) and a margin like 0.05.")
    if args.until_decided and (args.report_only or args.seed_step < 1 or (args.rounds is not None and args.rounds < 0)):
        raise ParamsError("--until-decided runs seeds in rounds, with --seed-step 1 or more and --rounds 0 or more. "
                          "Fix: drop --report-only, or --until-decided.")
    preset = grid.load_preset(args.preset)
    overrides = [*preset["set"], *args.overrides]  # the command line wins
    params = grid.load_study_params(args.params, overrides, preset["grid"], args.grid)
    arms = grid.arms(params, args.max_arms)
    args.jobs = args.jobs or preset["jobs"] or 1
    engine = ENGINES[args.engine].from_args(args)
    out = layout.StudyFiles(grid.study_name(args.name, args.preset, params.study.grid, overrides))
    print(f"study {out.name} ({out.dir}/), arms: " + ", ".join(a.name for a in arms), flush=True)
    return Study(args, overrides, arms, engine, out, preset["report"])


def choose_backend(study: Study) -> dict:
    """Sets KERAS_BACKEND for the runs (DVC's queue and Ray's tasks train on it);
    returns the training rates any probe measured, by backend."""
    args, loaded = study.args, os.environ.get("KERAS_BACKEND", "tensorflow")  # this process's Keras
    probed = [*study.overrides, *study.arms[0].overrides]
    requested = args.backend or backend_choice.default(study.engine.local)
    backend, rates, lines = backend_choice.choose(
        requested, args.params, probed,
        kept=lambda: backend_choice.study_backend(raw_records.train_records(study.out)))
    if args.dry_run and backend != loaded and backend not in rates:  # estimate with the runs' backend
        rates[backend] = backend_choice.probe(backend, args.params, probed)
    print("\n".join(lines), flush=True)
    os.environ["KERAS_BACKEND"] = backend
    return rates


def dry_run(study: Study, rates: dict) -> None:
    from ablation.study import dry_run as planning
    print("\n".join(planning.plan(study.arms, study.engine, jobs=study.args.jobs,
                                  rate=rates.get(os.environ.get("KERAS_BACKEND", "tensorflow")))))
    if study.out.runs.is_dir():  # a study with committed results: what more seeds would decide
        committed = collect(study.arms, study.out, study.engine, experiments=False)
        print("\n" + "\n".join(study_report.seeds_plan(committed, study.design,
                                                       grid.reproducing_command(sys.argv[1:]))))


def verify(study: Study) -> None:
    from ablation.study import verify as checking
    if study.args.seeds:  # by replication: an equivalence test of K rerun seeds against the record
        agreed, lines = checking.replicate(study.engine, study.arms, study.overrides, study.out, study.args.verify,
                                           study.args.seeds, study.args.margin)
        print("\n".join(lines))
        raise SystemExit(0 if agreed else 1)
    verdicts = checking.rerun_and_judge(study.engine, study.arms, study.overrides, study.out, study.args.verify)
    print("\n\n".join(map(str, verdicts)))
    if not all(v.agrees for v in verdicts):  # a disagreement, or a check that could not tell
        raise SystemExit(1)


def run(study: Study) -> tuple[list, Design]:
    """Runs the arms (in rounds with --until-decided; none with --report-only) and
    collects their results; returns them and the design the report decides by."""
    args, design = study.args, study.design
    if args.until_decided:
        from ablation.study import until_decided
        results, looks = until_decided.run_rounds(study.engine, study.arms, study.overrides, study.out, design,
                                                  args.max_seeds, args.seed_step, args.rounds)
        return results, dataclasses.replace(design, looks=tuple(looks))
    if not args.report_only:
        study.engine.submit(study.arms, study.overrides, study.out, args.resume)
    results = collect(study.arms, study.out, study.engine)
    if study.engine.walls and (kept := overhead.record(study.engine.walls, results, study.out.name)) is not None:
        print(f"overhead on this machine: {kept:.0f} s per stage process, measured from this study's experiments "
              "and kept for the next dry run's estimates", flush=True)
    for written in save_raw(results, study.out):
        print(f"raw results: {written}", flush=True)
    if looks := raw_records.recorded_looks(study.out):  # run in rounds before
        design = dataclasses.replace(design, looks=looks)
    return results, design


def report(study: Study, results: list, design: Design, definition: dict) -> None:
    log_hint = study.engine.log_hint(study.out)
    text = study_report.write_study_report(results, study.out, grid.reproducing_command(sys.argv[1:]), log_hint,
                                           replace=study.args.replace_report, design=design)
    print("\n".join(study_report.headline(text)))
    raw_records.record_owner(study.out, definition, design.looks)
    out = study.out
    print(f"wrote {out.report}, {out.figures}/, {out.metrics} and {out.dvc_yaml}; commit {out.dir} to keep them")
    if missing := [name for r in results for name in r.missing]:
        raise SystemExit(f"error: runs {missing} left no results. Fix: read {log_hint.format(name='NAME')}, fix the "
                         "cause, then rerun with --resume.")


def estimates(study: Study, rates: dict) -> dict[str, float | None]:
    """{experiment: estimated seconds} for the progress ETA, as the dry run makes them."""
    from ablation.study import dry_run as planning
    first = study.arms[0].params.for_dataset(study.arms[0].params.datasets[0])
    rate = rates.get(os.environ.get("KERAS_BACKEND", "tensorflow")) or planning.measured_rate(first)
    return planning.experiment_seconds(study.arms, study.engine, rate, overhead.per_stage()[0])


def main():
    study = setup(parser().parse_args())
    rates = {} if study.args.report_only or study.args.verify else choose_backend(study)
    if study.args.dry_run:
        return dry_run(study, rates)
    if study.engine.local and not (study.args.report_only or study.args.verify):
        study.engine.estimates = estimates(study, rates)
    with repo.study_lock():
        if study.args.verify:
            return verify(study)
        definition = raw_records.definition(study.arms, study.overrides)
        raw_records.check_owner(study.out, definition, study.args.replace_report)
        results, design = run(study)
        report(study, results, design, definition)
