"""A rerun of one committed run judged against the record.

On the same machine kind (machine.kind: CPU model and kernel flags, GPUs,
backend, threads) training is bit-for-bit deterministic, so every number must
be identical: anything else is named. On another kind the kernels round
differently and the rerun is one more draw of the arm: it agrees when its test
accuracy lies inside the arm's 95% prediction interval for a new seed, from
the committed seeds other than the rerun's own (t-based: mean ± t(n-1) · std
· sqrt(1 + 1/n)). With fewer than MIN_SEEDS of them that interval is many seed
stds wide (±15.6 with two), so a regression would pass it: the check then
says it is uninformative, with the half-width, and verifies nothing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ablation.core import machine, reading, run_records
from ablation.core.errors import DataError
from ablation.core.layout import StudyFiles
from ablation.core.params import ParamsError
from ablation.core.statistics import half_width_in_stds, prediction_interval, summarize
from ablation.study import replication
from ablation.study.collecting import collect
from ablation.study.engines.base import Engine
from ablation.study.engines.registry import ENGINES
from ablation.study.grid import seed_name, seed_of
from ablation.study.repo import experiment_commits, read_file

# train.json fields that measure the machine's speed or describe it, not the result.
NOT_RESULTS = ("train_seconds", "validation_seconds", "images_per_second", "epochs_run_here", "machine")
# train.json fields that runs recorded before these were added lack: compared only where recorded.
RECORDED_SINCE = ("initial_weights", "data_order", "mixed_precision")
MIN_SEEDS = 5  # other seeds a cross-machine check needs: then ±t(4) · sqrt(1.2) = ±3.0 seed stds at most


@dataclass(frozen=True)
class Verdict:
    agrees: bool | None  # None: the check could not tell (too few other seeds)
    lines: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(self.lines)


def result_differences(recorded: dict, rerun: dict) -> list[str]:
    """What differs between two runs' results (train.json without timings, the
    evaluation, every epoch's logs, layer responses, each test prediction)."""
    out = []
    for key in sorted(set(recorded["train"]) | set(rerun["train"])):
        if key in NOT_RESULTS or (key in RECORDED_SINCE and key not in recorded["train"]):
            continue
        if recorded["train"].get(key) != rerun["train"].get(key):
            out.append(f"train.json {key}: {recorded['train'].get(key)!r} -> {rerun['train'].get(key)!r}")
    for key in sorted(set(recorded["eval"]) | set(rerun["eval"])):
        if recorded["eval"].get(key) != rerun["eval"].get(key):
            old, new = recorded["eval"].get(key), rerun["eval"].get(key)
            out.append(f"eval {key}: {old!r} -> {new!r}" if not isinstance(old, dict) else f"eval {key} differs")
    for column in sorted(set(recorded["history"]) | set(rerun["history"])):
        old, new = recorded["history"].get(column, []), rerun["history"].get(column, [])
        if old != new:
            epoch = next((i + 1 for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)) + 1)
            out.append(f"history {column}: first differs at epoch {epoch}")
    if recorded["responses"] != rerun["responses"]:
        out.append("layer responses differ")
    if recorded["predictions"] != rerun["predictions"]:
        old, new = _predicted(recorded["predictions"]), _predicted(rerun["predictions"])
        changed = sum(old.get(i) != new.get(i) for i in old.keys() | new.keys())
        out.append(f"predictions differ ({changed} of {len(old)} test images predicted otherwise)")
    return out


def _predicted(text: str | None) -> dict[str, str]:
    return {row["id"]: row["predicted"] for row in reading.csv_rows(text)}


def judge(recorded: dict, rerun: dict, arm_runs: dict, name: str) -> Verdict:
    """recorded, rerun: one run each (run_records.collect_runs' form); arm_runs: the
    committed runs of the arm, every seed (the rerun's own is left out of the
    cross-machine check: the rerun is no new draw against itself)."""
    old_machine, new_machine = recorded["train"].get("machine"), rerun["train"].get("machine")
    lines = [f"recorded: {machine.summary(old_machine)}", f"rerun:    {machine.summary(new_machine)}"]
    old_accuracy, new_accuracy = run_records.test_accuracy(recorded), run_records.test_accuracy(rerun)
    lines.append(f"test accuracy: recorded {_fmt(old_accuracy)}, rerun {_fmt(new_accuracy)}; training took "
                 f"{recorded['train'].get('train_seconds')} s, rerun {rerun['train'].get('train_seconds')} s")
    differences = result_differences(recorded, rerun)
    if old_machine and machine.kind(old_machine) == machine.kind(new_machine):
        versions = machine.differences(old_machine, new_machine)
        if not differences:
            return Verdict(True, (*lines, f"{name}: identical to the record (same machine kind: every result, "
                                          "epoch and test prediction equal)."))
        cause = (f" Library versions differ ({'; '.join(versions)}), which may change kernels."
                 if versions else " Same libraries too: a nondeterminism to report.")
        return Verdict(False, (*lines, f"{name}: NOT identical on the same machine kind.{cause}",
                               *(f"  {d}" for d in differences)))
    why = ("the record names no machine (run before machines were recorded)" if not old_machine else
           "another machine kind (" + "; ".join(machine.differences(old_machine, new_machine)[:4]) + ")")
    lines.append(f"{why}: bit-for-bit equality is not expected, so the rerun is judged against the arm's spread "
                 "across seeds." + (" It is identical anyway." if not differences else ""))
    others = [a for r in arm_runs.values() if r is not recorded and (a := run_records.test_accuracy(r)) is not None]
    lines.append(_replication_plan(arm_runs))
    if new_accuracy is None:
        return Verdict(False, (*lines, f"{name}: the rerun diverged (no test accuracy)."))
    if len(others) < MIN_SEEDS:
        width = (f"their 95% prediction interval for a new seed is ±{half_width_in_stds(len(others)):.1f} seed "
                 "standard deviations wide, so a clear regression would still fall inside it"
                 if len(others) >= 2 else "they give no spread to judge against")
        return Verdict(None, (*lines, f"{name}: INCONCLUSIVE: the record has {len(others)} other seed(s) of the arm "
                                      f"(a check needs {MIN_SEEDS}), and {width}; the rerun is "
                                      f"{new_accuracy - old_accuracy:+.4f} off its own seed's record. Fix: verify on "
                                      "the machine kind the record ran on (exact), or add seeds to the study "
                                      "(--until-decided)."))
    summary = summarize(others)
    low, high = prediction_interval(others)
    z = (new_accuracy - summary.mean) / summary.std
    inside = low <= new_accuracy <= high
    return Verdict(inside, (*lines,
                            f"the arm's other seeds {summary.format()}, range [{min(others):.4f}, {max(others):.4f}]; "
                            f"95% prediction interval for a new seed [{low:.4f}, {high:.4f}] "
                            f"(±{half_width_in_stds(len(others)):.1f} seed standard deviations)",
                            f"{name}: {'agrees statistically' if inside else 'does NOT agree'}: the rerun is "
                            f"{z:+.2f} seed standard deviations from their mean, "
                            f"{'inside' if inside else 'outside'} the prediction interval."))


def _replication_plan(arm_runs: dict) -> str:
    """What `--seeds K` would take to decide by replication here, from the record's seed std."""
    record = [a for r in arm_runs.values() if (a := run_records.test_accuracy(r)) is not None]
    seeds = replication.seeds_for(record, replication.DEFAULT_MARGIN) if len(record) >= 2 else None
    return (f"to decide by replication: --seeds {seeds} (--margin {replication.DEFAULT_MARGIN:g}: "
            f"{replication.POWER:.0%} power from the record's {len(record)} seeds)" if seeds else
            f"the record's {len(record)} seed(s) are too few to decide by replication at --margin "
            f"{replication.DEFAULT_MARGIN:g}; add seeds to the study (--until-decided)")


def _fmt(value: float | None) -> str:
    return "diverged" if value is None else f"{value:.4f}"


def split_target(target: str, arm_names: list[str]) -> tuple[str, int | None]:
    """`ARM` or `ARM-sSEED` -> (arm, seed or None); ParamsError naming the arms."""
    if target in arm_names:
        return target, None
    for arm in arm_names:
        if (seed := seed_of(target, arm)) is not None:
            return arm, seed
    raise ParamsError(f"--verify {target!r} is no run of this study. Fix: pass an arm ({', '.join(arm_names)}) "
                      "or ARM-sSEED for one seed of it.")


def committed_record(arm, out: StudyFiles):
    """The arm's runs as the study committed them (grid.ArmResult), or None: read
    as whichever engine ran the study left them, each engine its own experiments
    (the reading that finds the most runs: DVC's finds only a Ray study's added seeds)."""
    found = [r for engine in ENGINES.values() if not (r := collect([arm], out, engine(), experiments=False)[0]).failed]
    return max(found, key=lambda r: sum(len(by_seed) for by_seed in r.runs.values()), default=None)


def rerun_and_judge(engine: Engine, study_arms: list, common: list[str], out: StudyFiles,
                    target: str) -> list[Verdict]:
    """Reruns one run of a committed study as the experiment `verify-ARM-sSEED` on
    `engine` (an experiment, so the workspace is left alone) and judges it against
    the study's raw results, one verdict per dataset."""
    by_name = {arm.name: arm for arm in study_arms}
    arm_name, seed = split_target(target, list(by_name))
    arm = by_name[arm_name]
    recorded = committed_record(arm, out)
    if recorded is None:
        raise DataError(f"{out.runs} holds no raw results of {arm_name}, so there is nothing to check a rerun "
                        f"against. Fix: run the study first (ablate study ...), and commit {out.dir}.")
    seeds = sorted({s for by_seed in recorded.runs.values() for s in by_seed})
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise ParamsError(f"--verify {target}: the record of {arm_name} has seeds {seeds}, not {seed}. "
                          f"Fix: pass {seed_name(arm_name, seeds[0])}.")
    rerun_arm = dataclasses.replace(arm.seed_arm(seed), name=f"verify-{seed_name(arm_name, seed)}")
    datasets = list(recorded.runs)
    # Forced, with their upstream stages: outputs restored from a cache would verify nothing.
    engine.run([rerun_arm], common, out,
               forced=tuple(f"{stage}@{dataset}-{seed}" for dataset in datasets for stage in ("train", "evaluate")))
    commit = experiment_commits().get(rerun_arm.name)
    if commit is None:
        raise DataError(f"the rerun {rerun_arm.name} left no results. "
                        f"Fix: read {engine.log_hint(out).format(name=rerun_arm.name)}.")
    rerun = run_records.collect_runs(datasets, [seed], lambda path: read_file(commit, path))
    return [judge(recorded.runs[dataset][seed], rerun[dataset][seed], recorded.runs[dataset],
                  f"{arm_name} seed {seed} on {dataset}") for dataset in datasets]


def replicate(engine: Engine, study_arms: list, common: list[str], out: StudyFiles, target: str, seeds: int,
              margin: float) -> tuple[bool, list[str]]:
    """Reruns `seeds` seeds of the arm (the record's own first, then new ones) as
    experiments `verify-ARM-sSEED` and decides by TOST against the record, per dataset;
    (all equivalent, the lines to print)."""
    by_name = {arm.name: arm for arm in study_arms}
    arm_name, _ = split_target(target, list(by_name))
    recorded = committed_record(by_name[arm_name], out)
    if recorded is None:
        raise DataError(f"{out.runs} holds no raw results of {arm_name}, so there is nothing to check a rerun "
                        f"against. Fix: run the study first (ablate study ...), and commit {out.dir}.")
    have = sorted({s for by_seed in recorded.runs.values() for s in by_seed})
    chosen = [*have, *range(max(have) + 1, max(have) + 1 + seeds)][:seeds]
    reruns = [dataclasses.replace(by_name[arm_name].seed_arm(s), name=f"verify-{seed_name(arm_name, s)}")
              for s in chosen]
    datasets = list(recorded.runs)
    for seed, rerun_arm in zip(chosen, reruns):  # one at a time: each forces the stages of its own seed
        engine.run([rerun_arm], common, out, forced=tuple(f"{stage}@{d}-{seed}" for d in datasets
                                                          for stage in ("train", "evaluate")))
    commits = experiment_commits()
    if missing := [a.name for a in reruns if a.name not in commits]:
        raise DataError(f"the reruns {missing} left no results. Fix: read "
                        f"{engine.log_hint(out).format(name=missing[0])}.")
    said, agreed = [], True
    for dataset in datasets:
        rerun = {s: run_records.test_accuracy(run_records.collect_runs(
            [dataset], [s], lambda path, c=commits[f"verify-{seed_name(arm_name, s)}"]: read_file(c, path))[dataset][s])
            for s in chosen}
        record = {s: run_records.test_accuracy(r) for s, r in recorded.runs[dataset].items()}
        paired = set(chosen) <= set(record)
        result = replication.judge_replication([rerun[s] for s in chosen],
                                               [record[s] for s in chosen] if paired else list(record.values()),
                                               margin, paired)
        said += replication.lines(result, f"{arm_name} on {dataset}", margin, len(chosen))
        agreed = agreed and result.outcome == "equivalent"
    return agreed, said
