"""Verify by replication: TOST as statsmodels computes it, and on simulated records a
faithful rerun with the planned seeds passes while a 10-point regression fails."""
import numpy as np
import pytest
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from ablation.study.replication import ALPHA, DEFAULT_MARGIN, judge_replication, seeds_for

RECORD = [0.68, 0.70, 0.72, 0.71]  # four committed seeds of an arm


@pytest.mark.parametrize("rerun", [[0.69, 0.73, 0.70], [0.66, 0.64, 0.70, 0.69, 0.61]])
def test_tost_p_is_statsmodels(rerun):
    ours = judge_replication(rerun, RECORD, DEFAULT_MARGIN, paired=False)
    theirs = ttost_ind(rerun, RECORD, -DEFAULT_MARGIN, DEFAULT_MARGIN, usevar="unequal")[0]
    assert ours.p_equivalence == pytest.approx(theirs, rel=1e-9)
    paired = judge_replication(rerun[:4], RECORD[:len(rerun[:4])], DEFAULT_MARGIN, paired=True)
    assert paired.p_equivalence == pytest.approx(
        ttost_paired(np.array(rerun[:4]), np.array(RECORD[:len(rerun[:4])]), -DEFAULT_MARGIN, DEFAULT_MARGIN)[0],
        rel=1e-9)


def test_a_faithful_rerun_with_the_planned_seeds_passes_and_a_regression_fails():
    spread = float(np.std(RECORD, ddof=1))
    planned = seeds_for(RECORD, DEFAULT_MARGIN)
    assert planned is not None and 2 <= planned <= 20
    rng = np.random.default_rng(0)
    trials = 400
    faithful = [judge_replication(list(rng.normal(np.mean(RECORD), spread, planned)), RECORD, DEFAULT_MARGIN,
                                  paired=False).outcome for _ in range(trials)]
    regressed = [judge_replication(list(rng.normal(np.mean(RECORD) - 0.10, spread, planned)), RECORD,
                                   DEFAULT_MARGIN, paired=False).outcome for _ in range(trials)]
    assert faithful.count("equivalent") / trials >= 0.7  # planned for 80% power
    assert faithful.count("differs") / trials <= ALPHA
    assert regressed.count("equivalent") / trials <= ALPHA  # a false "equivalent" at most at the level
    assert regressed.count("differs") / trials >= 0.9


def test_inconclusive_names_the_seeds_needed_and_too_few_record_seeds_say_so():
    unsure = judge_replication([0.70, 0.66], RECORD, DEFAULT_MARGIN, paired=False)
    assert unsure.outcome == "inconclusive" and unsure.seeds_needed == seeds_for(RECORD, DEFAULT_MARGIN)
    assert seeds_for([0.5, 0.7], 0.01) is None  # two wide record seeds: no rerun count reaches the power
