"""Collecting a study's results: each arm's runs read from the experiments an engine
made of it (their git commits), or from the raw results the study committed
(raw_records) where they are not here; and copying what came from commits into
the study's folder (runs/) to be committed."""
from __future__ import annotations

from pathlib import Path

from ablation.core import layout, run_records
from ablation.core.layout import StudyFiles
from ablation.core.params import Params, parse_params
from ablation.study import raw_records
from ablation.study.grid import Arm, ArmResult, seed_of
from ablation.study.raw_records import Source
from ablation.study.repo import experiment_commits, git, read_file


def locate(name: str, expected: Params, commits: dict[str, str], out: StudyFiles,
           experiments: bool = True) -> Source | None:
    """Where experiment `name` of this study is read from: its commit when it is in
    this checkout and ran with the arm's params, else its raw results in the
    study's folder (same check), else None. An experiment of the same name from
    another study (other params) is passed over, with a note. Without
    `experiments`, only the raw results count (the committed record)."""
    candidates = []
    if experiments and (commit := commits.get(name)):
        candidates.append(Source(name, lambda path, commit=commit: read_file(commit, path), f"experiment {commit[:7]}",
                                 commit))
    if out.run(name).is_dir():
        candidates.append(Source(name, raw_records.raw_reader(out.run(name)), out.run(name).as_posix()))
    for source in candidates:
        if source.read(layout.ArmReportFiles().metrics.as_posix()) is None:  # its report stage never ran
            continue
        differ = raw_records.params_differ(source.read(layout.PARAMS_FILE), expected, f"params.yaml of {name}")
        if not differ:
            return source
        print(f"note: {source.origin} ({name}) ran with other params ({', '.join(differ[:4])}"
              f"{', ...' if len(differ) > 4 else ''}), so it is not this study's run", flush=True)
    return None


def added_seeds(arm: Arm, commits: dict[str, str], out: StudyFiles) -> list[int]:
    """Seeds run for the arm after its first experiment, each an experiment of its own
    (`NAME-sSEED`, as --until-decided adds them), found among this checkout's
    experiments and the study's raw results."""
    names = set(commits) | ({p.name for p in out.runs.iterdir() if p.is_dir()} if out.runs.is_dir() else set())
    return sorted(seed for name in names if (seed := seed_of(name, arm.name)) is not None
                  and seed not in arm.params.train.seeds)


def collect(study_arms: list[Arm], out: StudyFiles, engine, experiments: bool = True) -> list[ArmResult]:
    """Each arm with its params (validated as every stage validates them) and its
    runs, read from the experiments `engine` (an engines.base.Engine) makes of it
    and from any seeds added since (added_seeds), each read from its commit or its
    raw results (`locate`); `failed` when none left results, and `missing` names
    the experiments that left none. The arm gathers the seeds that finished."""
    commits = experiment_commits()
    results = []
    for arm in study_arms:
        added = [arm.seed_arm(seed) for seed in added_seeds(arm, commits if experiments else {}, out)]
        wanted = [(a.name, a.params) for a in [*engine.experiments(arm), *added]]
        runs, missing, sources = {}, [], []
        for name, expected in wanted:
            source = locate(name, expected, commits, out, experiments)
            if source is None:
                missing.append(name)
                continue
            fix = (f"restore it (`git checkout -- {source.origin}`), or rerun the arm (the study without "
                   "--report-only)." if not source.commit else f"rerun the arm (experiment {name} is damaged).")
            found = run_records.collect_runs(expected.datasets, expected.train.seeds, source.read,
                                           origin=source.origin, fix=fix)
            asked = raw_records.recorded_precision(source.read(layout.PARAMS_FILE))
            for run in (r for by_seed in found.values() for r in by_seed.values()):
                run["train"].setdefault("mixed_precision", asked)  # recorded before train.json said
            for dataset, by_seed in found.items():
                runs.setdefault(dataset, {}).update(by_seed)
            sources.append(source)
        params = arm.params
        if runs:  # the seeds its experiments left
            collected = sorted({seed for by_seed in runs.values() for seed in by_seed})
            params = params.with_overrides([f"train.seeds={collected}"])
            runs = {dataset: dict(sorted(by_seed.items())) for dataset, by_seed in runs.items()}
        results.append(ArmResult(arm.name, arm.point, params, runs, tuple(missing), tuple(sources)))
    return results


def save_raw(results: list[ArmResult], out: StudyFiles) -> list[Path]:
    """The raw results of every run read from an experiment's commit, copied into
    the study folder (runs/EXPERIMENT/) to be committed."""
    written = []
    for result in results:
        for source in (s for s in result.sources if s.commit):
            params = parse_params(source.read(layout.PARAMS_FILE), f"params.yaml of {source.experiment}")
            details = {"arm": result.name, "grid": list(result.overrides), "commit": source.commit,
                       "baseline": git("rev-parse", f"{source.commit}^").strip()}
            written.append(raw_records.write_raw(source, params.datasets, params.train.seeds, out, details))
    return written
