"""Summaries across seeds and paired comparisons of arms."""
from __future__ import annotations

import math
from statistics import mean, stdev


def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values (std 0 for one value)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None, None
    return mean(finite), (stdev(finite) if len(finite) > 1 else 0.0)


def format_mean_std(values, digits: int = 4) -> str:
    """'0.9123' for one value, '0.9123 ± 0.0040 (n=3)' for several, 'diverged' for none."""
    values = list(values)
    average, spread = mean_std(values)
    if average is None:
        return "diverged" if values else "n/a"
    if len(values) == 1:
        return f"{average:.{digits}f}"
    return f"{average:.{digits}f} ± {spread:.{digits}f} (n={len(values)})"


def mcnemar_p(a_correct, b_correct) -> float:
    """Exact two-sided McNemar test on paired per-example correctness of two arms:
    the probability of a split of discordant pairs at least this uneven if both
    arms were equally accurate."""
    only_a = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    only_b = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)
