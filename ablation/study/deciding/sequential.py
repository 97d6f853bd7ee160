"""Adding seeds until a study's primary contrasts are decided, with the
false-positive rate held across the rounds: a group-sequential design.

Each round (a "look") adds seeds to the arms still undecided and tests every
primary contrast again. Testing at 0.05 at every look would find a null effect
far more often than 5% of the time; instead each look spends part of alpha by
Lan and DeMets' O'Brien-Fleming-type spending function,
alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)), where t is the look's share of
the seed budget (Lan & DeMets 1983, Biometrika 70:659). The look's bound on
|Z| follows from the joint normal law of the sequential statistics
(corr(Z_i, Z_j) = sqrt(t_i / t_j)); each look then tests at that bound's
nominal two-sided level, with the t-test the report uses (Jennison & Turnbull
2000, Group Sequential Methods, sec. 3.8). Several primary contrasts are
decided by Holm's procedure made sequential (Maurer & Bretz 2013, Stat.
Biopharm. Res. 5:311): each open contrast gets alpha / (open contrasts); a
rejection passes its share on, and the others are tested again at every look
so far with the larger share. No library covers this (statsmodels and scipy
have no group-sequential design; R's gsDesign/rpact are not Python).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import optimize, stats


def spent(fraction: float, alpha: float) -> float:
    """Alpha spent by the look at this share of the seed budget (O'Brien-Fleming type)."""
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(fraction)))


GRID = 2001  # points of the numerical integration over each look's continuation region


@lru_cache(maxsize=256)
def nominal_levels(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """The two-sided level each look tests at, for looks at these increasing shares
    of the seed budget (the last 1 when the budget is spent). The bounds come from
    the recursive numerical integration of Armitage, McPherson and Rowe (1969) on
    the score scale S_k = Z_k sqrt(t_k), whose increments are independent normals."""
    bounds: list[float] = []
    grid, density, previous = np.zeros(1), np.ones(1), 0.0  # S_0 = 0 with certainty
    for k, fraction in enumerate(fractions):
        target = spent(fraction, alpha) - (spent(fractions[k - 1], alpha) if k else 0.0)
        step = np.sqrt(fraction - previous)
        weights = density * (np.gradient(grid) if grid.size > 1 else 1.0)  # mass at each grid point

        def crossing(bound):  # P(continued to look k and |S_k| beyond bound * sqrt(t_k))
            edge = bound * np.sqrt(fraction)
            return float(weights @ (stats.norm.cdf((-edge - grid) / step) + stats.norm.sf((edge - grid) / step)))
        bound = np.inf if target <= 0 else float(optimize.brentq(lambda b: crossing(b) - target, 0.01, 40.0,
                                                                   xtol=1e-10))
        bounds.append(bound)
        edge = min(bound, 40.0) * np.sqrt(fraction)
        new_grid = np.linspace(-edge, edge, GRID)
        density = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / step) / step @ weights
        grid, previous = new_grid, fraction
    return tuple(float(2 * stats.norm.sf(b)) for b in bounds)


def looks(first: int, step: int, budget: int) -> list[int]:
    """Seeds per arm at each look: `first`, then `step` more per round, the last at the budget."""
    counts = list(range(first, budget, step))
    return [*counts, budget] if not counts or counts[-1] != budget else counts


def decide(p_values: list[dict], fractions: list[float], alpha: float) -> dict:
    """Which primary contrasts are decided so far: {contrast: the look (0-based) that
    decided it}. p_values[k] maps each contrast tested at look k to its p (a
    contrast absent there was not tested); fractions[k] is look k's share of the
    seed budget, planned before the study (the nominal levels depend on it)."""
    contrasts = list(dict.fromkeys(key for at_look in p_values for key in at_look))
    decided: dict = {}
    while len(decided) < len(contrasts):
        open_ = [key for key in contrasts if key not in decided]
        levels = nominal_levels(tuple(fractions), alpha / len(open_))
        found = {key: next((k for k, at_look in enumerate(p_values)
                            if at_look.get(key) is not None and at_look[key] < levels[k]), None) for key in open_}
        found = {key: look for key, look in found.items() if look is not None}
        if not found:
            break
        decided.update(found)
    return decided
