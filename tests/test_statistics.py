import math

import pytest

from ablation.statistics import format_mean_std, mcnemar_p, mean_std


def test_mean_std_ignores_diverged_runs():
    assert mean_std([0.5, 0.7, None, math.nan]) == (pytest.approx(0.6), pytest.approx(0.1414, abs=1e-4))
    assert mean_std([None]) == (None, None)
    assert format_mean_std([0.9]) == "0.9000"
    assert format_mean_std([0.5, 0.7]) == "0.6000 ± 0.1414 (n=2)"
    assert format_mean_std([None, None]) == "diverged"


def test_mcnemar_exact():
    # 10 discordant pairs all favouring A: p = 2 * 0.5**10
    a = [True] * 10 + [True] * 5
    b = [False] * 10 + [True] * 5
    assert mcnemar_p(a, b) == pytest.approx(2 / 1024)
    assert mcnemar_p(a, a) == 1.0
    assert mcnemar_p([True, False], [False, True]) == 1.0  # balanced disagreements
