"""`--until-decided`: a study that adds seeds in rounds until its primary
contrasts are decided or its seed budget is spent (the design and its
false-positive control: ablation/core/sequential.py).

The arms' own seeds are the first look; each round adds `step` seeds, as
experiments of their own (`NAME-sSEED`), to every arm still in an undecided
primary contrast, then tests every primary contrast again on the seeds so far.
An arm stops getting seeds once every primary contrast it is in is decided.
The raw results are written after every round, so a study cut short keeps what
finished, and a rerun of the same command goes on from them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ablation.core import sequential
from ablation.core.decisions import ALPHA, PRIMARY, Decisions, Design
from ablation.core.errors import DataError, ParamsError
from ablation.core.layout import StudyFiles
from ablation.study import grid
from ablation.study.engines import dvc_queue
from ablation.study.engines.dvc_queue import DvcQueue
from ablation.study.grid import Arm, ArmResult


def budget(max_seeds: int | None, design: Design, first: int) -> int:
    """The seeds per arm the study may reach: --max-seeds, else the preset's report.max_seeds."""
    chosen = max_seeds if max_seeds is not None else design.max_seeds
    if chosen is None:
        raise ParamsError("--until-decided needs a seed budget. Fix: pass --max-seeds N (the report's \"How to "
                          "decide\" says how many would decide each contrast), or set report.max_seeds in the preset.")
    if chosen <= first:
        raise ParamsError(f"--max-seeds {chosen} is no more than the {first} seed(s) each arm runs first. "
                          f"Fix: pass --max-seeds {first + 1} or more.")
    return chosen


def _first(results: list[ArmResult], seeds: int) -> list[ArmResult]:
    """The arms as they were at a look: each arm's seeds below `seeds`."""
    return [replace(r, runs={d: {s: run for s, run in by_seed.items() if s < seeds} for d, by_seed in r.runs.items()})
            for r in results]


# The report's contrasts, exactly as it tests them (report.study_report.decisions_for,
# passed in: the study never imports the report):
# (results, done, dataset, design) -> Decisions.
Contrasts = Callable[[list, list, str, Design], Decisions]


def primary_p_values(results: list[ArmResult], seeds: int, design: Design,
                     contrasts: Contrasts) -> dict[tuple, tuple[float, set]]:
    """{(dataset, contrast key): (p, the arms it compares)} of every tested primary contrast
    on each arm's first `seeds` seeds: the raw p, which sequential.decide adjusts."""
    at_look = _first(results, seeds)
    done = [r for r in at_look if any(r.runs.values())]
    out = {}
    for dataset in dict.fromkeys(d for r in done for d in r.runs):
        for key, tested in contrasts(at_look, done, dataset, design).items():
            if tested.family == PRIMARY and tested.tested:
                out[(dataset, key)] = (tested.comparison.p_value, set(key[1]))
    return out


def next_round(results: list[ArmResult], looks: list[int], at: int, design: Design,
               contrasts: Contrasts) -> tuple[dict, list[str]]:
    """(decided, arms to add seeds to) at look `at` (an index into `looks`): `decided`
    maps each primary contrast decided by then to the look that decided it; the arms
    are those in a primary contrast still open. Each look reads every arm's first
    looks[k] seeds, whatever more a resumed study already has."""
    by_look = [primary_p_values(results, n, design, contrasts) for n in looks[: at + 1]]
    fractions = [n / looks[-1] for n in looks[: at + 1]]
    decided = sequential.decide([{k: p for k, (p, _) in at_look.items()} for at_look in by_look], fractions, ALPHA)
    latest = by_look[-1]
    open_arms = {arm for key, (_, arms) in latest.items() if key not in decided for arm in arms}
    untested = not latest  # no contrast testable yet (one seed): every arm needs more
    return decided, [r.name for r in results if untested or r.name in open_arms]


def reached(results: list[ArmResult], looks: list[int], design: Design, contrasts: Contrasts) -> tuple[dict, int]:
    """(decided, look index) at the last look the results complete: a look is complete
    when every arm still open at the look before has its seeds (a study cut short
    mid-round is read at the round before)."""
    at = 0
    decided, open_arms = next_round(results, looks, at, design, contrasts)
    by_name = {r.name: r for r in results}
    while open_arms and at + 1 < len(looks) and all(_seeds(by_name[a]) >= looks[at + 1] for a in open_arms):
        at += 1
        decided, open_arms = next_round(results, looks, at, design, contrasts)
    return decided, at


def _seeds(result: ArmResult) -> int:
    return max((s for by_seed in result.runs.values() for s in by_seed), default=-1) + 1


def run_rounds(arms: list[Arm], overrides: list[str], out: StudyFiles, design: Design, max_seeds: int | None,
        step: int, jobs: int, rounds: int | None, contrasts: Contrasts) -> tuple[list[ArmResult], list[int]]:
    """Runs the study's arms (where they have no results yet), then adds seeds in
    rounds until every primary contrast is decided or the budget is spent, or
    `rounds` rounds have run here (a study longer than a session: the same command
    goes on); writes the raw results after every round. Returns the arms as
    grid.collect reads them, and the looks (seeds per arm) the design planned: the
    report decides by them, at the last look the results complete."""
    first = min(len(arm.params.train.seeds) for arm in arms)
    if any(arm.params.train.seeds != tuple(range(first)) for arm in arms):
        raise ParamsError("--until-decided adds seeds after the arms' own, which must be 0, 1, ... Fix: pass "
                          f"-S 'train.seeds=[{','.join(map(str, range(max(first, 2))))}]'.")
    looks = sequential.looks(first, step, budget(max_seeds, design, first))
    engine = DvcQueue(jobs)
    results = grid.collect(arms, out, engine)
    if missing := [arm for arm, r in zip(arms, results) if r.failed]:
        dvc_queue.queue(missing, overrides, jobs)
        results = grid.collect(arms, out, engine)
    at, ran = 0, 0  # the looks are replayed in order, so a study cut short mid-round goes on where it stopped
    while True:
        for written in grid.save_raw(results, out):
            print(f"raw results: {written}", flush=True)
        if failed := [r.name for r in results if r.failed or r.missing]:
            raise DataError(f"runs of {failed} left no results, so no contrast can be decided. Fix: read "
                            f"{dvc_queue.LOG_HINT.format(name='NAME')}, fix the cause, then rerun the same command "
                            "(finished runs are kept).")
        decided, open_arms = next_round(results, looks, at, design, contrasts)
        upcoming = looks[at + 1] if at + 1 < len(looks) else None
        by_name = {r.name: r for r in results}
        added = [arm.seed_arm(seed) for arm in arms if arm.name in open_arms and upcoming
                 for seed in range(_seeds(by_name[arm.name]), upcoming)]
        paused = bool(added) and rounds is not None and ran >= rounds
        print(f"until decided: {len(decided)} primary contrast(s) decided at {looks[at]} seeds per arm (budget "
              f"{looks[-1]}, looks at {looks}); " + (
                  f"stopping after {ran} round(s) (--rounds); the same command goes on" if paused
                  else f"adding seeds up to {upcoming} to {', '.join(open_arms)}" if open_arms and upcoming
                  else "done"), flush=True)
        if not open_arms or upcoming is None or paused:
            return results, looks
        if added:  # none when a resumed study already has this round's seeds
            dvc_queue.queue(added, overrides, jobs)
            results = grid.collect(arms, out, engine)
            ran += 1
        at += 1
