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


def test_welch_matches_the_textbook_with_hsu_s_degrees_of_freedom():
    # a: mean 3, var 1 (n=3); b: mean 1, var 1 (n=3): t = 2 / sqrt(2/3) = 2.449; Hsu's df = min(n) - 1 = 2
    # (Satterthwaite's would be 4), so p = 0.1340 and the CI's t quantile is t(0.975, 2) = 4.302653
    c = welch([2, 3, 4], [0, 1, 2])
    assert c.difference == pytest.approx(2.0) and c.df == 2
    assert c.p_value == pytest.approx(0.13397, abs=1e-4)
    assert (c.ci_low, c.ci_high) == (pytest.approx(2 - 4.302653 * math.sqrt(2 / 3), rel=1e-5),
                                     pytest.approx(2 + 4.302653 * math.sqrt(2 / 3), rel=1e-5))
    assert c.format_difference(2) == "+2.00 [-1.51, +5.51]"
    assert welch([1, 2, 3, 4, 5], [0, 1]).df == 1  # the smaller group's n - 1
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


def test_a_contrast_of_several_groups_is_welch_s_statistic_at_hsu_s_df():
    """Two groups with weights 1, -1 are Welch's statistic (scipy's), tested at the
    smaller group's n - 1 degrees of freedom; one group is the one-sample t-test;
    an interaction of four groups has the smallest group's n - 1 too."""
    a, b = [0.71, 0.73, 0.70], [0.66, 0.69]
    two = statistics.contrast([a, b], [1, -1])
    welch_t = stats.ttest_ind(a, b, equal_var=False).statistic
    assert (two.p_value, two.df) == (pytest.approx(2 * stats.t.sf(abs(welch_t), 1)), 1)
    one = statistics.paired([0.73, 0.71, 0.75], [0.68, 0.67, 0.69])
    reference = stats.ttest_rel([0.73, 0.71, 0.75], [0.68, 0.67, 0.69])
    assert (one.p_value, one.df) == (pytest.approx(reference.pvalue), 2)
    groups = [[0.70, 0.71], [0.33, 0.32], [0.45, 0.48], [0.28, 0.26]]
    four = statistics.contrast(groups, [1, -1, -1, 1])
    assert four.difference == pytest.approx(0.705 - 0.325 - 0.465 + 0.27) and four.df == 1
    assert four.spread == pytest.approx(np.sqrt(np.mean([np.var(g, ddof=1) for g in groups])))
    assert statistics.contrast([[0.9], [0.5, 0.6]], [1, -1]).p_value is None  # one seed: no test


def test_power_and_seeds_needed_match_the_noncentral_t():
    from statsmodels.stats.power import TTestPower
    two = statistics.welch([0.70, 0.72, 0.74], [0.66, 0.68, 0.70])
    for n in (2, 3, 7, 20):  # Welch's statistic at Hsu's n - 1 df, noncentrality d sqrt(n / 2)
        shift, critical = 0.03 / two.spread * np.sqrt(n / 2), stats.t.ppf(0.975, n - 1)
        expected = stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift)
        assert statistics.power(two, 0.03, 0.05, n) == pytest.approx(expected, abs=1e-6)
    needed = statistics.seeds_needed(two, 0.03, 0.0125)
    assert statistics.power(two, 0.03, 0.0125, needed) >= 0.8 > statistics.power(two, 0.03, 0.0125, needed - 1)
    one = statistics.paired([0.73, 0.71, 0.75], [0.68, 0.67, 0.69])
    assert statistics.power(one, 0.01, 0.05, 9) == pytest.approx(TTestPower().power(0.01 / one.spread, 9, 0.05),
                                                                abs=1e-6)
    assert statistics.seeds_needed(one, 1e-6, 0.05) is None  # past MAX_SEEDS
    low, high = statistics.spread_interval(two)
    assert low < two.spread < high and high / low == pytest.approx(
        np.sqrt(stats.chi2.ppf(0.975, 4) / stats.chi2.ppf(0.025, 4)))
