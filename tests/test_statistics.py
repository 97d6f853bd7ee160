import math

import pytest

from ablation.statistics import mcnemar_p, summarize, welch


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
