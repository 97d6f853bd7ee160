"""Summaries across seeds, tests across seeds, and paired comparisons of two
trained models.

Seeds are the unit of replication: an arm's mean, sample std and 95% confidence
interval are over its seeds' finite results, and a difference between two arms
is tested across seeds: paired by seed where their seeds start from the same
weights and data order, else Welch's t-test; Holm adjusts a family of tests.
Diverged runs are never averaged in: they are counted, and every rendering
names the count. McNemar's test compares two fixed trained models on the same
test images; it says nothing about the architecture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean, stdev

from scipy import stats

CONFIDENCE = 0.95


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


@dataclass(frozen=True)
class SeedSummary:
    """An arm's values over seeds: runs, finite runs, mean, sample std and the
    t-based 95% CI of the mean (std and CI need two finite values)."""
    runs: int
    finite: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def diverged(self) -> int:
        return self.runs - self.finite

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "ci95_low": self.ci_low, "ci95_high": self.ci_high,
                "runs": self.runs, "diverged_runs": self.diverged}

    def format_mean(self, digits: int = 4) -> str:
        """The mean alone (timings, where the spread is of no interest)."""
        return "" if self.mean is None else f"{self.mean:.{digits}f}"

    def format(self, digits: int = 4) -> str:
        """'0.9123 ± 0.0040 [0.8763, 0.9483] (n=2)', '0.9123 (n=1)', with '; 1 diverged'
        when runs diverged, 'diverged (3 of 3)' when all did, 'n/a' without runs."""
        if not self.runs:
            return "n/a"
        if self.mean is None:
            return f"diverged ({self.diverged} of {self.runs})"
        text = f"{self.mean:.{digits}f}"
        if self.std is not None:
            text += f" ± {self.std:.{digits}f} [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"
        text += f" (n={self.finite}" + (f"; {self.diverged} diverged" if self.diverged else "") + ")"
        return text


def summarize(values) -> SeedSummary:
    values = list(values)
    finite = _finite(values)
    if not finite:
        return SeedSummary(len(values), 0, None, None, None, None)
    average = mean(finite)
    if len(finite) < 2:
        return SeedSummary(len(values), 1, average, None, None, None)
    spread = stdev(finite)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(finite) - 1) * spread / math.sqrt(len(finite))
    return SeedSummary(len(values), len(finite), average, spread, average - half, average + half)


@dataclass(frozen=True)
class Comparison:
    """Difference of means a - b across seeds, its 95% CI and the two-sided p of the
    test that made it (`welch` or `paired`)."""
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    df: float | None

    def format_difference(self, digits: int = 4) -> str:
        if self.difference is None:
            return "n/a"
        text = f"{self.difference:+.{digits}f}"
        return text + (f" [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]" if self.ci_low is not None else "")

    def format_p(self) -> str:
        return "n/a" if self.p_value is None else f"{self.p_value:.3g}"


def welch(a, b) -> Comparison:
    """Welch's t-test of the finite values of a against b (unequal variances).
    Needs two finite values on each side for a CI and p; the difference of means
    alone otherwise."""
    a, b = _finite(a), _finite(b)
    if not a or not b:
        return Comparison(None, None, None, None, None)
    difference = mean(a) - mean(b)
    if len(a) < 2 or len(b) < 2:
        return Comparison(difference, None, None, None, None)
    va, vb = stdev(a) ** 2 / len(a), stdev(b) ** 2 / len(b)
    if va + vb == 0:  # identical values on both sides: no spread to test against
        return Comparison(difference, difference, difference, 1.0 if difference == 0 else 0.0, None)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    p_value = float(2 * stats.t.sf(abs(difference) / se, df))  # Welch's two-sided test
    return Comparison(difference, difference - half, difference + half, p_value, df)


def paired(a, b) -> Comparison:
    """The paired t-test of a against b, pairs by position (one per shared seed),
    over the pairs where both values are finite: the mean of the differences,
    its t-based 95% CI and the two-sided p (scipy's ttest_rel)."""
    differences = _finite(x - y for x, y in zip(a, b) if x is not None and y is not None)
    if not differences:
        return Comparison(None, None, None, None, None)
    difference = mean(differences)
    if len(differences) < 2:
        return Comparison(difference, None, None, None, None)
    if stdev(differences) == 0:  # every seed moved by the same amount: no spread to test against
        return Comparison(difference, difference, difference, 1.0 if difference == 0 else 0.0, None)
    result = stats.ttest_1samp(differences, 0.0)
    interval = result.confidence_interval(CONFIDENCE)
    return Comparison(difference, float(interval.low), float(interval.high), float(result.pvalue),
                      float(result.df))


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None stays None). By
    hand: scipy has only the Benjamini-Hochberg adjustment, and statsmodels'
    multipletests would be a dependency for ten lines."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


def mcnemar_p(a_correct, b_correct) -> float:
    """Exact two-sided McNemar test on paired per-example correctness of two
    trained models: the probability of a split of discordant pairs at least this
    uneven if both models were equally accurate on this test set."""
    only_a = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    only_b = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(stats.binomtest(min(only_a, only_b), n, 0.5).pvalue)
