"""Summaries across seeds, tests across seeds, and paired comparisons of two
trained models.

Seeds are the unit of replication: an arm's mean, sample std and 95% confidence
interval are over its seeds' finite results, and a difference between two arms
is tested across seeds: paired by seed where each seed's runs share a seed block
(study/deciding/blocks.py), else Welch's t-test at Hsu's degrees of freedom;
Holm adjusts a family of tests.
Diverged runs are never averaged in: they are counted, and every rendering
names the count. McNemar's test compares two fixed trained models on the same
test images; it says nothing about the architecture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean, stdev

import numpy as np
from scipy import integrate, stats

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
    """A contrast of arm means across seeds (a - b, or a weighted sum of several
    groups' means): its value, 95% CI, two-sided p and the test's degrees of
    freedom; the pooled seed std of its groups with that std's degrees of
    freedom; and what planning more seeds needs (seeds_needed): each group's
    squared weight times its seed variance."""
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    df: float | None
    spread: float | None = None
    spread_df: int | None = None
    variance_terms: tuple[float, ...] = ()

    def format_difference(self, digits: int = 4) -> str:
        if self.difference is None:
            return "n/a"
        text = f"{self.difference:+.{digits}f}"
        return text + (f" [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]" if self.ci_low is not None else "")

    def format_p(self) -> str:
        return "n/a" if self.p_value is None else f"{self.p_value:.3g}"


def contrast(groups, weights) -> Comparison:
    """The weighted sum of the groups' means (weights summing to zero compare arms:
    [1, -1] is a - b; [1, -1, -1, 1] an interaction) over their finite values,
    Welch's statistic with Hsu's degrees of freedom (welch_df): the 95% CI and
    two-sided p of the t-test of zero. Needs two finite values in every group for
    a CI and p; the contrast's value alone otherwise. scipy has Welch's test for
    two groups only (ttest_ind), not for a contrast of several, hence this."""
    groups = [_finite(g) for g in groups]
    if any(not g for g in groups):
        return Comparison(None, None, None, None, None)
    difference = sum(w * mean(g) for w, g in zip(weights, groups))
    if any(len(g) < 2 for g in groups):
        return Comparison(difference, None, None, None, None)
    terms = [w * w * stdev(g) ** 2 / len(g) for w, g in zip(weights, groups)]
    spread_df = sum(len(g) - 1 for g in groups)
    spread = math.sqrt(sum((len(g) - 1) * stdev(g) ** 2 for g in groups) / spread_df)
    planning = {"spread": spread, "spread_df": spread_df,
                "variance_terms": tuple(float(w * w * stdev(g) ** 2) for w, g in zip(weights, groups))}
    if sum(terms) == 0:  # identical values in every group: no spread to test against
        return Comparison(difference, difference, difference, 1.0 if difference == 0 else 0.0, None, **planning)
    se = math.sqrt(sum(terms))
    df = welch_df([len(g) for g in groups])
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    p_value = float(2 * stats.t.sf(abs(difference) / se, df))
    return Comparison(difference, difference - half, difference + half, p_value, float(df), **planning)


def welch_df(sizes) -> int:
    """The degrees of freedom of a Welch statistic over groups of these sizes: the
    smallest group's n - 1 (Hsu 1938; Scheffe 1970, JASA 65:1501), which holds
    the test's size at alpha whatever the variance ratio. Satterthwaite's estimate
    does not at a few seeds a side: with residual-56's seed sd 3.8x residual-20's
    and looks at 2-3-4 seeds, the committed CIFAR-10 design decided a null (c)
    in 0.058 of simulated studies (tests/study/test_size_partial_nulls.py). With
    one group (a paired test) it is the usual n - 1."""
    return min(sizes) - 1


def welch(a, b) -> Comparison:
    """Welch's t-test of the finite values of a against b (unequal variances)."""
    return contrast([a, b], [1, -1])


def paired_differences(a, b) -> list[float]:
    """a - b by position (one pair per shared seed), where both are finite."""
    return _finite(x - y for x, y in zip(a, b) if x is not None and y is not None)


def paired(a, b) -> Comparison:
    """The paired t-test of a against b, pairs by position (one per shared seed),
    over the pairs where both values are finite: the one-sample t-test of the
    differences (scipy's ttest_rel), as a contrast of one group."""
    return contrast([paired_differences(a, b)], [1])


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


POWER = 0.8  # the power seeds_needed plans for
MAX_SEEDS = 1000  # seeds_needed gives up past this many seeds per arm


def power(comparison: Comparison, effect: float, alpha: float, seeds: int) -> float:
    """The chance that the report's two-sided t-test at `alpha` finds a true contrast
    of `effect` with `seeds` per arm, each group's seed variance as observed, at
    the degrees of freedom the test will have (welch_df: seeds - 1). The noncentral t's
    tails, integrated over the chi-square of the estimated variance: scipy's
    nct.sf returns nan for some of the parameters met here (large noncentrality)."""
    terms = comparison.variance_terms
    df = welch_df([seeds])
    shift = abs(effect) / math.sqrt(sum(terms) / seeds)
    critical = stats.t.ppf(1 - alpha / 2, df)

    def rejects(v):  # P(|Z + shift| > critical * sqrt(v / df)), weighted by v's chi-square density
        bar = critical * math.sqrt(v / df)
        return (stats.norm.sf(bar - shift) + stats.norm.cdf(-bar - shift)) * stats.chi2.pdf(v, df)
    low, high = stats.chi2.ppf([1e-12, 1 - 1e-12], df)  # where the chi-square has its mass
    return float(min(1.0, integrate.quad(rejects, low, high, limit=200)[0]))


def seeds_needed(comparison: Comparison, effect: float | None, alpha: float, target: float = POWER) -> int | None:
    """The fewest seeds per arm (2 or more) that give the test `target` power for a
    true contrast of `effect`; None without a seed std or effect, or past MAX_SEEDS."""
    if not comparison.spread or not effect or not any(comparison.variance_terms):
        return None

    def enough(n):
        return power(comparison, abs(effect), alpha, n) >= target
    if not enough(MAX_SEEDS):
        return None
    low, high = 1, MAX_SEEDS  # enough(high), and 1 seed is never enough: bisect
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def spread_interval(comparison: Comparison) -> tuple[float, float] | None:
    """The 95% CI of the pooled seed std (chi-square with its degrees of freedom):
    how far the seeds' own spread, and so any seed count planned from it, may be off."""
    if not comparison.spread or not comparison.spread_df:
        return None
    df = comparison.spread_df
    return (comparison.spread * math.sqrt(df / stats.chi2.ppf(0.5 + CONFIDENCE / 2, df)),
            comparison.spread * math.sqrt(df / stats.chi2.ppf(0.5 - CONFIDENCE / 2, df)))


def half_width_in_stds(n: int) -> float:
    """The 95% prediction interval's half-width, in seed stds, from n seeds."""
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * math.sqrt(1 + 1 / n))


def prediction_interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% interval a new seed's value falls in, from n >= 2 seeds (normal, t-based)."""
    summary = summarize(values)
    if summary.std is None:
        return None
    half = half_width_in_stds(summary.finite) * summary.std
    return summary.mean - half, summary.mean + half


def confusion_matrix(labels, predicted, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: rows true, columns predicted."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix
