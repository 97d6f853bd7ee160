"""The seeds-until-decided design (ablation/study/deciding/sequential.py), checked by simulating
studies with numbers only: its false-positive rate across rounds, and what it
saves when an effect is real."""
import numpy as np
import pytest
from scipy import stats

from ablation.study.deciding import sequential

STUDIES = 2000
SEEDS = sequential.looks(3, 2, 9)  # seeds per arm at each look: 3, 5, 7, 9


def _p_values(differences: np.ndarray) -> list[list[dict]]:
    """differences: (study, contrast, seed) per-seed paired differences; each study's p
    of every contrast at every look (the paired t-test of the seeds so far)."""
    by_look = [stats.ttest_1samp(differences[:, :, :n], 0.0, axis=2).pvalue for n in SEEDS]
    return [[{c: float(at_look[s, c]) for c in range(differences.shape[1])} for at_look in by_look]
            for s in range(differences.shape[0])]


def test_the_false_positive_rate_holds_across_rounds_and_contrasts():
    """2,000 null studies of two primary contrasts, four looks each: the rate of
    studies that call any contrast decided stays at alpha (testing at 0.05 at every
    look would be about 0.2)."""
    rng = np.random.default_rng(1)
    studies = _p_values(rng.standard_normal((STUDIES, 2, SEEDS[-1])))
    fractions = [n / SEEDS[-1] for n in SEEDS]
    rate = np.mean([bool(sequential.decide(p, fractions, 0.05)) for p in studies])
    naive = np.mean([any(v < 0.05 for at_look in p for v in at_look.values()) for p in studies])
    assert rate == pytest.approx(0.05, abs=0.015)
    assert naive > 0.12  # what the design guards against


def test_a_real_effect_is_found_with_fewer_seeds_than_the_fixed_design():
    """A contrast of 1.5 seed std: the fixed design runs all 9 seeds; stopping at the
    look that decides it runs fewer on average, and finds it about as often."""
    rng = np.random.default_rng(2)
    studies = _p_values(1.5 + rng.standard_normal((STUDIES, 1, SEEDS[-1])))
    fractions = [n / SEEDS[-1] for n in SEEDS]
    decided = [sequential.decide(p, fractions, 0.05).get(0) for p in studies]
    seeds_run = [SEEDS[-1] if look is None else SEEDS[look] for look in decided]
    fixed_power = np.mean([p[-1][0] < 0.05 for p in studies])
    assert np.mean(seeds_run) < 0.85 * SEEDS[-1]
    assert np.mean([look is not None for look in decided]) > fixed_power - 0.05


def test_the_bounds_match_the_spending_function():
    """One look at the whole budget spends all of alpha; the first of four equally
    spaced looks spends 2 - 2 Phi(1.96 / sqrt(0.25)), the O'Brien-Fleming-type amount."""
    assert sequential.nominal_levels((1.0,), 0.05)[0] == pytest.approx(0.05, abs=1e-6)
    levels = sequential.nominal_levels((0.25, 0.5, 0.75, 1.0), 0.05)
    assert levels[0] == pytest.approx(2 - 2 * stats.norm.cdf(1.959964 / 0.5), rel=1e-4)
    assert list(levels) == sorted(levels) and levels[-1] < 0.05
    assert sequential.looks(2, 2, 7) == [2, 4, 6, 7] and sequential.looks(3, 3, 3) == [3]


def test_a_round_adds_seeds_only_to_the_arms_of_undecided_primary_contrasts():
    """Twins at depths 20 and 56 with two seeds each: the depth-56 gain is huge and the
    depth-20 one is noise. At the first look of a 2-then-6 seed plan nothing in the
    primary family clears its early bound, so every arm goes on; with six seeds per
    arm (the budget), the depth-56 gain and (c) are decided, and only the arms of the
    contrasts still open would get more."""
    from ablation.study.deciding.decisions import Design
    from ablation.study.deciding.rounds import next_round
    from tests.conftest import arm, run

    def runs(accuracies):
        return [run(a, a + 0.05, [True]) for a in accuracies]
    two = {"resnet20": [0.71, 0.72], "plain20": [0.72, 0.70], "resnet56": [0.80, 0.81], "plain56": [0.30, 0.31]}
    six = {"resnet20": [0.71, 0.72, 0.70, 0.73, 0.69, 0.72], "plain20": [0.72, 0.70, 0.71, 0.72, 0.70, 0.73],
           "resnet56": [0.80, 0.81, 0.80, 0.82, 0.79, 0.81], "plain56": [0.30, 0.31, 0.30, 0.32, 0.29, 0.31]}

    def results(accuracy):
        return [arm(name, name.startswith("resnet"), int(name[-2:]), runs(values)) for name, values in accuracy.items()]
    decided, open_arms = next_round(results(two), [2, 4, 6], 0, Design())
    assert decided == {} and sorted(open_arms) == ["plain20", "plain56", "resnet20", "resnet56"]
    decided, open_arms = next_round(results(six), [2, 4, 6], 2, Design())
    labels = {key[1]: look for (_, key), look in decided.items()}
    assert labels.get(frozenset({"resnet56", "plain56"})) is not None  # the depth-56 gain
    assert frozenset({"resnet20", "plain20"}) not in labels and {"resnet20", "plain20"} <= set(open_arms)
