"""The looks of a study run in rounds (`--until-decided`): at each look, every
primary contrast tested on each arm's first seeds (the same contrasts the report
prints, contrasts.py), decided by the group-sequential rule (sequential.py),
and the arms still open."""
from __future__ import annotations

from dataclasses import replace

from ablation.study.deciding import sequential
from ablation.study.deciding.contrasts import decisions_for
from ablation.study.deciding.decisions import ALPHA, PRIMARY, Design
from ablation.study.grid import ArmResult


def _first(results: list[ArmResult], seeds: int) -> list[ArmResult]:
    """The arms as they were at a look: each arm's seeds below `seeds`."""
    return [replace(r, runs={d: {s: run for s, run in by_seed.items() if s < seeds} for d, by_seed in r.runs.items()})
            for r in results]


def primary_p_values(results: list[ArmResult], seeds: int, design: Design) -> dict[tuple, tuple[float, set]]:
    """{(dataset, contrast key): (p, the arms it compares)} of every tested primary contrast
    on each arm's first `seeds` seeds: the raw p, which sequential.decide adjusts."""
    at_look = _first(results, seeds)
    done = [r for r in at_look if any(r.runs.values())]
    out = {}
    for dataset in dict.fromkeys(d for r in done for d in r.runs):
        for key, tested in decisions_for(at_look, done, dataset, design).items():
            if tested.family == PRIMARY and tested.tested:
                out[(dataset, key)] = (tested.comparison.p_value, set(key[1]))
    return out


def next_round(results: list[ArmResult], looks: list[int], at: int, design: Design) -> tuple[dict, list[str]]:
    """(decided, arms to add seeds to) at look `at` (an index into `looks`): `decided`
    maps each primary contrast decided by then to the look that decided it; the arms
    are those in a primary contrast still open. Each look reads every arm's first
    looks[k] seeds, whatever more a resumed study already has."""
    by_look = [primary_p_values(results, n, design) for n in looks[: at + 1]]
    fractions = [n / looks[-1] for n in looks[: at + 1]]
    decided = sequential.decide([{k: p for k, (p, _) in at_look.items()} for at_look in by_look], fractions, ALPHA)
    latest = by_look[-1]
    open_arms = {arm for key, (_, arms) in latest.items() if key not in decided for arm in arms}
    untested = not latest  # no contrast testable yet (one seed): every arm needs more
    return decided, [r.name for r in results if untested or r.name in open_arms]


def reached(results: list[ArmResult], looks: list[int], design: Design) -> tuple[dict, int]:
    """(decided, look index) at the last look the results complete: a look is complete
    when every arm still open at the look before has its seeds (a study cut short
    mid-round is read at the round before)."""
    at = 0
    decided, open_arms = next_round(results, looks, at, design)
    by_name = {r.name: r for r in results}
    while open_arms and at + 1 < len(looks) and all(seeds_run(by_name[a]) >= looks[at + 1] for a in open_arms):
        at += 1
        decided, open_arms = next_round(results, looks, at, design)
    return decided, at


def seeds_run(result: ArmResult) -> int:
    return max((s for by_seed in result.runs.values() for s in by_seed), default=-1) + 1
