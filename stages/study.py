"""Run the whole ablation grid (`study.grid` in params.yaml) as named DVC experiments
through DVC's queue, then write reports/study.md comparing them.

    python -m stages.study [--jobs N] [-S key=value ...]   # -S applies to every arm
    python -m stages.study --grid model.depth=20,32        # replaces study.grid's values of a key
    python -m stages.study --report-only                   # re-collect finished experiments
    python -m stages.study --preset studies/cifar10-cpu.yaml   # a committed study: its -S, grid and jobs
"""
import sys

from ablation import layout, study, study_report
from stages import _cli


def main():
    parser = _cli.parser(__doc__)
    parser.add_argument("--jobs", type=int, default=None, help="experiments run in parallel (default 1, or the preset's)")
    parser.add_argument("--preset", help="a study file (studies/*.yaml): -S values, grid and jobs; "
                                         "command-line -S/--grid/--jobs still apply on top")
    parser.add_argument("--report-only", action="store_true", help="only collect finished experiments")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="grid values for KEY instead of params.yaml's study.grid (repeatable)")
    args = parser.parse_args()
    preset = study.load_preset(args.preset) if args.preset else {"set": [], "grid": {}, "jobs": None}
    overrides = [*preset["set"], *args.overrides]  # the command line wins
    params = study.load_study_params(args.params, overrides, preset["grid"], args.grid)
    arms = study.arms(params)
    print("study arms: " + ", ".join(a["name"] for a in arms), flush=True)
    if not args.report_only:
        study.run(arms, overrides, args.jobs or preset["jobs"] or 1)
    results = study.collect(arms)
    command = " ".join(["python -m stages.study", *(a for a in sys.argv[1:] if a != "--report-only")])
    print(study_report.write_study_report(results, layout.REPORTS, command))
    failed = [r["name"] for r in results if r["failed"]]
    if failed:
        raise SystemExit(f"error: arms {failed} left no results. Fix: read `dvc queue logs NAME`, then rerun.")


if __name__ == "__main__":
    _cli.run(main)
