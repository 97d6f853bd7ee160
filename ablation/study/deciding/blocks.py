"""Seed blocks: what the runs of one seed share. A study runs all arms of a seed
in one round on one machine (--until-decided's rounds; a resumed study may move
a later seed elsewhere), so a seed's runs share the machine kind, the precision
and the backend its train.json records, and the round its seed number falls in
(study.json's looks). A machine kind or precision shifts every arm of a seed
alike (in the committed CIFAR-10 study, residual-56 reached 0.557 in bfloat16
and 0.637 in float32), so:

- a contrast whose sides ran each shared seed in one block is tested paired by
  seed, which takes the shift out (comparisons.compare);
- the block x contrast test says whether the contrast itself moved between
  blocks: the per-seed differences compared across blocks by one-way ANOVA
  (scipy.stats.f_oneway), printed with each block's mean difference.
"""
from __future__ import annotations

from scipy import stats

from ablation.core import machine


def block(run: dict) -> tuple | None:
    """A run's block: (machine kind, precision); None for a run recorded before
    machines were (its backend is part of the machine kind)."""
    kind = machine.kind(run["train"].get("machine"))
    return None if kind is None else (kind, run["train"].get("mixed_precision"))


def label(of: tuple) -> str:
    """'mixed_bfloat16 on AMD EPYC (...)': a block as the report names it."""
    kind, precision = of
    return f"{precision or 'float32'} on {machine.summary(dict(zip(machine.KIND_KEYS, kind)))}"


def paired_seeds(*sides: dict) -> list[int] | None:
    """The seeds every side ({seed: run}) ran, where each seed's runs share one
    recorded block; None unless there are two such seeds or more and every shared
    seed is one."""
    shared = sorted(set.intersection(*(set(side) for side in sides)))
    alike = all(block(sides[0][s]) is not None and len({block(side[s]) for side in sides}) == 1 for s in shared)
    return shared if len(shared) >= 2 and alike else None


def seed_blocks(runs: dict) -> dict[tuple, list[int]]:
    """{block: its seeds} of one arm's runs on one dataset ({seed: run})."""
    out: dict[tuple, list[int]] = {}
    for seed, run in sorted(runs.items()):
        if (of := block(run)) is not None:
            out.setdefault(of, []).append(seed)
    return out


def block_effect(differences: dict[int, float], runs: dict) -> str:
    """'by block: +0.163 in mixed_bfloat16 (seeds 0, 1); +0.089 in float32 (seeds
    2, 3); block x contrast F(1, 2) = 4.30, p = 0.174': a paired
    contrast's per-seed `differences` by the block of `runs` ({seed: run}); "" where
    the seeds ran in one block."""
    groups: dict[tuple, list[int]] = {}
    for seed in sorted(differences):
        groups.setdefault(block(runs[seed]), []).append(seed)
    if len(groups) < 2 or None in groups:
        return ""
    by_precision = len({of[1] for of in groups}) == len(groups)  # the precision tells them apart: say only it
    means = [f"{sum(differences[s] for s in seeds) / len(seeds):+.4f} in "
             f"{(of[1] or 'float32') if by_precision else label(of)} "
             f"(seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))})" for of, seeds in groups.items()]
    values = [[differences[s] for s in seeds] for seeds in groups.values()]
    within = len(differences) - len(values)
    if within < 1:
        return f"by block: {'; '.join(means)} (one seed a block: no block x contrast test)"
    test = stats.f_oneway(*values)
    return f"by block: {'; '.join(means)}; block x contrast F({len(values) - 1}, {within}) = " \
           f"{test.statistic:.2f}, p = {test.pvalue:.3g}"
