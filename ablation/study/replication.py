"""Verify by replication (`--verify ARM --seeds K --margin M`): on another machine
kind a rerun cannot be bit for bit, and one rerun seed against a few recorded ones
cannot tell a faithful rerun from a regression (both land inside a prediction
interval many seed stds wide). K rerun seeds are instead compared with the record by
an equivalence test, two one-sided t-tests (TOST) of the rerun's mean against the
record's at level ALPHA each, with margin M in test accuracy:

- equivalent: the difference's 90% CI lies inside (-M, +M) (TOST p < ALPHA);
- differs: the 90% CI lies wholly outside [-M, +M] (beyond the margin, one-sided
  ALPHA);
- inconclusive: neither, with the seeds that would give POWER at the margin.

Reruns of the record's own seeds are paired seed by seed (each pair started from the
same weights and batches); seeds the record lacks make the comparison Welch's.
statsmodels has TOST (ttost_ind, ttost_paired) but is no runtime dependency of the
suite: tests/study/test_replication.py holds this to it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean, stdev

from scipy import stats

# The default margin: 5 points of test accuracy, the smallest change the committed
# studies' readers would call another result (a fifth of the depth-56 residual gain)
# and above every arm's seed std within one precision (at most 0.03 in cifar10-cpu).
DEFAULT_MARGIN = 0.05
ALPHA = 0.05  # each one-sided test's level: TOST's 90% CI
POWER = 0.8
MAX_SEEDS = 200  # planning gives up past this many rerun seeds


@dataclass(frozen=True)
class Replication:
    outcome: str  # "equivalent", "differs" or "inconclusive"
    difference: float  # rerun mean - record mean
    ci_low: float  # its 90% CI
    ci_high: float
    p_equivalence: float  # TOST's p: the larger one-sided p
    df: float
    test: str  # "paired t" or "Welch"
    seeds_needed: int | None  # rerun seeds for POWER at the margin (inconclusive only)


def _se_df(rerun: list[float], record: list[float], paired: bool) -> tuple[float, float]:
    if paired:
        differences = [a - b for a, b in zip(rerun, record)]
        return stdev(differences) / math.sqrt(len(differences)), len(differences) - 1
    terms = [stdev(g) ** 2 / len(g) for g in (rerun, record)]
    se = math.sqrt(sum(terms))
    if se == 0:
        return 0.0, len(rerun) + len(record) - 2
    return se, sum(terms) ** 2 / sum(t * t / (len(g) - 1) for t, g in zip(terms, (rerun, record)) if t)


def seeds_for(record: list[float], margin: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """The fewest rerun seeds (2 or more) whose TOST reaches `power` at `margin` when the
    rerun is faithful, the rerun's seed std taken as the record's (normal approximation
    with t quantiles); None when even MAX_SEEDS do not (the record's own seeds are too few)."""
    spread, n = stdev(record), len(record)
    for k in range(2, MAX_SEEDS + 1):
        df = n + k - 2
        if (stats.t.ppf(1 - alpha, df) + stats.t.ppf(1 - (1 - power) / 2, df)) * spread * math.sqrt(1 / n + 1 / k) \
                <= margin:
            return k
    return None


def judge_replication(rerun: list[float], record: list[float], margin: float, paired: bool) -> Replication:
    """TOST of mean(rerun) - mean(record) against +-margin; paired: by position."""
    difference = mean(rerun) - mean(record)
    se, df = _se_df(rerun, record, paired)
    if se == 0:  # no spread at all: the difference is what it is
        p = 0.0 if abs(difference) < margin else 1.0
        outcome = "equivalent" if abs(difference) < margin else "differs"
        return Replication(outcome, difference, difference, difference, p, df, "paired t" if paired else "Welch",
                           None)
    half = stats.t.ppf(1 - ALPHA, df) * se
    low, high = difference - half, difference + half
    p = float(max(stats.t.sf((difference + margin) / se, df), stats.t.cdf((difference - margin) / se, df)))
    outcome = "equivalent" if p < ALPHA else "differs" if low > margin or high < -margin else "inconclusive"
    return Replication(outcome, difference, low, high, p, df, "paired t" if paired else "Welch",
                       seeds_for(record, margin) if outcome == "inconclusive" else None)


def lines(result: Replication, name: str, margin: float, rerun_seeds: int) -> list[str]:
    verdict = {"equivalent": "EQUIVALENT to the record", "differs": "DIFFERS from the record",
               "inconclusive": "INCONCLUSIVE"}[result.outcome]
    found = (f"rerun minus record {result.difference:+.4f}, 90% CI [{result.ci_low:+.4f}, {result.ci_high:+.4f}] "
             f"({result.test}, df {result.df:.1f}); TOST p {result.p_equivalence:.3g} against a margin of "
             f"±{margin:g}")
    more = ""
    if result.outcome == "inconclusive":
        more = (f": {result.seeds_needed} rerun seeds would give {POWER:.0%} power at this margin"
                if result.seeds_needed else ": the record's seeds are too few for any number of rerun seeds; add "
                                            "seeds to the study (--until-decided) or widen --margin")
    return [found, f"{name}: {verdict} with {rerun_seeds} rerun seed(s){more}."]
