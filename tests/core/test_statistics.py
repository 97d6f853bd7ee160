import math

import numpy as np
import pytest
from scipy import stats

from ablation.core import statistics
from ablation.core.statistics import mcnemar_p, summarize, welch


def test_summary_over_seeds_with_known_answers():
    # mean 0.6, sample std 0.1, t(0.975, df=2) = 4.302653: half-width 4.302653 * 0.1 / sqrt(3)
    s = summarize([0.5, 0.6, 0.7])
    assert (s.mean, s.std) == (pytest.approx(0.6), pytest.approx(0.1))
    assert s.ci_high - s.mean == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert s.format() == "0.6000 ± 0.1000 [0.3516, 0.8484] (n=3)"


def test_diverged_runs_are_counted_never_averaged():
    s = summarize([0.5, None, math.nan, 0.7])
    assert (s.runs, s.finite, s.diverged, s.mean) == (4, 2, 2, pytest.approx(0.6))
    assert s.format().endswith("(n=2; 2 diverged)")
    one = summarize([0.9, None, None])
    assert one.format() == "0.9000 (n=1; 2 diverged)" and "±" not in one.format()  # no fake ± 0 from one value
    assert summarize([None, None]).format() == "diverged (2 of 2)"
    assert summarize([]).format() == "n/a"
    assert summarize([0.9, None]).as_dict()["diverged_runs"] == 1


def test_welch_matches_the_textbook():
    # a: mean 3, var 1 (n=3); b: mean 1, var 1 (n=3): t = 2 / sqrt(2/3) = 2.449, df = 4, p = 0.0705
    c = welch([2, 3, 4], [0, 1, 2])
    assert c.difference == pytest.approx(2.0) and c.df == pytest.approx(4.0)
    assert c.p_value == pytest.approx(0.07048, abs=1e-4)
    assert (c.ci_low, c.ci_high) == (pytest.approx(2 - 2.776445 * math.sqrt(2 / 3), rel=1e-5),
                                     pytest.approx(2 + 2.776445 * math.sqrt(2 / 3), rel=1e-5))
    assert c.format_difference(2) == "+2.00 [-0.27, +4.27]"
    assert welch([0.9], [0.5, 0.6]).p_value is None  # one finite value: a difference but no test
    assert welch([None, None], [0.5, 0.6]).difference is None
    assert welch([0.5, None, 0.7], [0.5, 0.7]).difference == pytest.approx(0.0)  # the diverged run is dropped


def test_mcnemar_exact():
    # 10 discordant pairs all favouring A: p = 2 * 0.5**10
    a = [True] * 10 + [True] * 5
    b = [False] * 10 + [True] * 5
    assert mcnemar_p(a, b) == pytest.approx(2 / 1024)
    assert mcnemar_p(a, a) == 1.0
    assert mcnemar_p([True, False], [False, True]) == 1.0  # balanced disagreements


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests
    p_values = [0.0428, 0.0983, 0.00286, 0.0556, 0.9, 0.0101]
    assert statistics.holm(p_values) == pytest.approx(list(multipletests(p_values, method="holm")[1]))
    assert statistics.holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]


def test_a_contrast_of_several_groups_is_welch_satterthwaite():
    """Two groups with weights 1, -1 are Welch's test (scipy); one group is the
    one-sample t-test; four groups of an interaction have the Satterthwaite df."""
    a, b = [0.71, 0.73, 0.70], [0.66, 0.69]
    two = statistics.contrast([a, b], [1, -1])
    assert two.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    one = statistics.paired([0.73, 0.71, 0.75], [0.68, 0.67, 0.69])
    reference = stats.ttest_rel([0.73, 0.71, 0.75], [0.68, 0.67, 0.69])
    assert (one.p_value, one.df) == (pytest.approx(reference.pvalue), 2)
    groups = [[0.70, 0.71], [0.33, 0.32], [0.45, 0.48], [0.28, 0.26]]
    four = statistics.contrast(groups, [1, -1, -1, 1])
    variances = [np.var(g, ddof=1) / 2 for g in groups]
    assert four.difference == pytest.approx(0.705 - 0.325 - 0.465 + 0.27)
    assert four.df == pytest.approx(sum(variances) ** 2 / sum(v * v for v in variances))
    assert four.spread == pytest.approx(np.sqrt(np.mean([np.var(g, ddof=1) for g in groups])))
    assert statistics.contrast([[0.9], [0.5, 0.6]], [1, -1]).p_value is None  # one seed: no test


def test_power_and_seeds_needed_match_statsmodels():
    from statsmodels.stats.power import TTestIndPower, TTestPower
    two = statistics.welch([0.70, 0.72, 0.74], [0.66, 0.68, 0.70])  # equal spreads: Welch df = 2(n - 1)
    d = 0.03 / two.spread
    for n in (2, 3, 7, 20):
        assert statistics.power(two, 0.03, 0.05, n) == pytest.approx(TTestIndPower().power(d, n, 0.05), abs=1e-6)
    needed = statistics.seeds_needed(two, 0.03, 0.0125)
    assert TTestIndPower().power(d, needed, 0.0125) >= 0.8 > TTestIndPower().power(d, needed - 1, 0.0125)
    one = statistics.paired([0.73, 0.71, 0.75], [0.68, 0.67, 0.69])
    assert statistics.power(one, 0.01, 0.05, 9) == pytest.approx(TTestPower().power(0.01 / one.spread, 9, 0.05),
                                                                abs=1e-6)
    assert statistics.seeds_needed(one, 1e-6, 0.05) is None  # past MAX_SEEDS
    low, high = statistics.spread_interval(two)
    assert low < two.spread < high and high / low == pytest.approx(
        np.sqrt(stats.chi2.ppf(0.975, 4) / stats.chi2.ppf(0.025, 4)))
