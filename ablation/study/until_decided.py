"""`--until-decided`: a study that adds seeds in rounds until its primary
contrasts are decided or its seed budget is spent (the design and its
false-positive control: study/deciding/sequential.py), on any engine.

The arms' own seeds are the first look; each round adds `step` seeds, as
experiments of their own (`NAME-sSEED`), to every arm still in an undecided
primary contrast, then tests every primary contrast again on the seeds so far.
An arm stops getting seeds once every primary contrast it is in is decided.
The raw results are written after every round, so a study cut short keeps what
finished, and a rerun of the same command goes on from them.
"""
from __future__ import annotations

import os

from ablation.core import machine, precision
from ablation.core.errors import DataError, ParamsError
from ablation.core.layout import StudyFiles
from ablation.study.collecting import collect, save_raw
from ablation.study.deciding import blocks, sequential
from ablation.study.deciding.decisions import Design
from ablation.study.deciding.rounds import next_round, seeds_run
from ablation.study.engines.base import Engine
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


def _check_seeds(arms: list[Arm]) -> int:
    """The seeds each arm runs first, which must be 0, 1, ... for seeds to be added after them."""
    first = min(len(arm.params.train.seeds) for arm in arms)
    if any(arm.params.train.seeds != tuple(range(first)) for arm in arms):
        raise ParamsError("--until-decided adds seeds after the arms' own, which must be 0, 1, ... Fix: pass "
                          f"-S 'train.seeds=[{','.join(map(str, range(max(first, 2))))}]'.")
    return first


def _round_block(engine: Engine, added: list[Arm]) -> str:
    """Where this round's runs train: on this machine, one seed block (deciding/blocks.py);
    on a cluster, each run's own, which the report names."""
    if not engine.local:
        return (f"round: {len(added)} run(s) on the {engine.name} cluster; each records its machine kind and "
                "precision, and the report names the seed blocks, so a round split across node kinds is no silent mix")
    settings = added[0].params.for_dataset(added[0].params.datasets[0]).train
    here = machine.describe(os.environ.get("KERAS_BACKEND", "tensorflow"), settings.threads)
    return (f"round: {len(added)} run(s), all on this machine in one seed block: "
            f"{blocks.label((machine.kind(here), precision.resolve(settings.mixed_precision, here)))}. Seeds a later "
            "sitting adds on another machine kind or precision are a block of their own; the report names each")


def _say(decided: dict, looks: list[int], at: int, ran: int, open_arms: list[str], upcoming, paused: bool) -> None:
    print(f"until decided: {len(decided)} primary contrast(s) decided at {looks[at]} seeds per arm (budget "
          f"{looks[-1]}, looks at {looks}); " + (
              f"stopping after {ran} round(s) (--rounds); the same command goes on" if paused
              else f"adding seeds up to {upcoming} to {', '.join(open_arms)}" if open_arms and upcoming
              else "done"), flush=True)


def run_rounds(engine: Engine, arms: list[Arm], overrides: list[str], out: StudyFiles, design: Design,
               max_seeds: int | None, step: int, rounds: int | None) -> tuple[list[ArmResult], list[int]]:
    """Runs the study's arms on `engine` (where they have no results yet), then adds
    seeds in rounds until every primary contrast is decided or the budget is spent,
    or `rounds` rounds have run here (a study longer than a session: the same command
    goes on); writes the raw results after every round. Returns the arms as
    collect reads them, and the looks (seeds per arm) the design planned: the
    report decides by them, at the last look the results complete."""
    first = _check_seeds(arms)
    looks = sequential.looks(first, step, budget(max_seeds, design, first))
    results = collect(arms, out, engine)
    if any(r.failed for r in results):
        engine.submit(arms, overrides, out, resume=True)
        results = collect(arms, out, engine)
    at, ran = 0, 0  # the looks are replayed in order, so a study cut short mid-round goes on where it stopped
    while True:
        for written in save_raw(results, out):
            print(f"raw results: {written}", flush=True)
        if failed := [r.name for r in results if r.failed or r.missing]:
            raise DataError(f"runs of {failed} left no results, so no contrast can be decided. Fix: read "
                            f"{engine.log_hint(out).format(name='NAME')}, fix the cause, then rerun the same "
                            "command (finished runs are kept).")
        decided, open_arms = next_round(results, looks, at, design)
        upcoming = looks[at + 1] if at + 1 < len(looks) else None
        by_name = {r.name: r for r in results}
        added = [arm.seed_arm(seed) for arm in arms if arm.name in open_arms and upcoming
                 for seed in range(seeds_run(by_name[arm.name]), upcoming)]
        paused = bool(added) and rounds is not None and ran >= rounds
        _say(decided, looks, at, ran, open_arms, upcoming, paused)
        if not open_arms or upcoming is None or paused:
            return results, looks
        if added:  # none when a resumed study already has this round's seeds
            print(_round_block(engine, added), flush=True)
            engine.run(added, overrides, out)
            results = collect(arms, out, engine)
            ran += 1
        at += 1
