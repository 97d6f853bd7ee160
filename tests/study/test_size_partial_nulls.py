"""The seeds-until-decided rule's size where only one primary contrast is null:
the committed CIFAR-10 design simulated with each primary contrast null in turn
and the others at the effects the committed runs show. The others get decided
and pass their share of alpha on (Holm), so the null one is tested at the full
bar; at two seeds a side (the first look, df 1) with a 4:1 seed-sd ratio, a
test whose degrees of freedom are estimated (Welch-Satterthwaite) overshoots it.

Each arm's seed mean, seed sd and twin correlation are read from the committed
runs (reports/cifar10-cpu/runs/); the looks, the tests and the rule are the
study's own (statistics.paired/welch, sequential.decide)."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from ablation.core import statistics
from ablation.study.deciding import sequential
from tests.conftest import ROOT

STUDY = ROOT / "reports" / "cifar10-cpu"
STUDIES = 20000  # Monte-Carlo standard error of a 0.05 rate: 0.0015
ALPHA = 0.05


def committed() -> dict:
    """{(arm, measure): [value per seed]}: test accuracy ("acc") and final training
    error ("err") of each arm of the committed CIFAR-10 study."""
    values = {}
    for metrics in sorted(STUDY.glob("runs/*/results/cifar10/seed*/eval/metrics.json")):
        arm = metrics.relative_to(STUDY / "runs").parts[0].split("-s")[0]
        seed = int(metrics.parent.parent.name.removeprefix("seed"))
        train = json.loads((metrics.parent.parent / "train.json").read_text())
        values.setdefault((arm, "acc"), {})[seed] = json.loads(metrics.read_text())["accuracy"]
        values.setdefault((arm, "err"), {})[seed] = 1 - train["train_accuracy"]
    return {key: [by_seed[s] for s in sorted(by_seed)] for key, by_seed in values.items()}


ARMS = {depth: (f"resnet-cifar{depth}", f"plain-cifar{depth}") for depth in (56, 20)}


def simulate(null: str, rng, sd_ratio: float | None = None) -> float:
    """The rate of simulated studies in which the `null` contrast is called decided."""
    data = committed()
    seeds = sequential.looks(2, 1, 4)
    mean = {key: float(np.mean(v)) for key, v in data.items()}
    sd = {key: float(np.std(v, ddof=1)) for key, v in data.items()}
    if sd_ratio:  # residual-56's seed sd set to sd_ratio x residual-20's: (c)'s Welch case
        sd[(ARMS[56][0], "acc")] = sd_ratio * sd[(ARMS[20][0], "acc")]
    rho = {(depth, m): float(np.corrcoef(data[(ARMS[depth][0], m)], data[(ARMS[depth][1], m)])[0, 1])
           for depth in ARMS for m in ("acc", "err")}
    (r56, p56), (r20, p20) = ARMS[56], ARMS[20]
    if null == "a":  # plain's depth effect on training error equal to residual's
        mean[(p56, "err")] = mean[(p20, "err")] + mean[(r56, "err")] - mean[(r20, "err")]
    elif null == "b56":
        mean[(p56, "acc")] = mean[(r56, "acc")]
    elif null == "b20":
        mean[(p20, "acc")] = mean[(r20, "acc")]
    elif null == "c":  # residual-56 as good as residual-20, its twin gain as observed
        mean[(p56, "acc")] += mean[(r20, "acc")] - mean[(r56, "acc")]
        mean[(r56, "acc")] = mean[(r20, "acc")]
    draws = {}
    for depth, (residual, plain) in ARMS.items():
        for m in ("acc", "err"):
            shared = rng.standard_normal((STUDIES, seeds[-1]))
            c = math.sqrt(max(rho[(depth, m)], 0.0))
            for arm in (residual, plain):
                own = rng.standard_normal((STUDIES, seeds[-1]))
                draws[(arm, m)] = mean[(arm, m)] + sd[(arm, m)] * (c * shared + math.sqrt(1 - c * c) * own)
    fractions = [n / seeds[-1] for n in seeds]
    twin = {d: draws[(ARMS[d][1], "err")] - draws[(ARMS[d][0], "err")] for d in ARMS}
    looks = [{"a": welch_p(twin[56][:, :n], twin[20][:, :n]),
              "b56": paired_p(draws[(r56, "acc")][:, :n], draws[(p56, "acc")][:, :n]),
              "b20": paired_p(draws[(r20, "acc")][:, :n], draws[(p20, "acc")][:, :n]),
              "c": welch_p(draws[(r56, "acc")][:, :n], draws[(r20, "acc")][:, :n])} for n in seeds]
    for n, at_look in zip(seeds, looks):  # the vectorized tests are the study's own, to the last digit
        for s in range(20):
            x = {key: v[s, :n].tolist() for key, v in draws.items()}
            assert at_look["c"][s] == pytest.approx(statistics.welch(x[(r56, "acc")], x[(r20, "acc")]).p_value)
            assert at_look["b56"][s] == pytest.approx(statistics.paired(x[(r56, "acc")], x[(p56, "acc")]).p_value)
    decided = [sequential.decide([{key: float(p[s]) for key, p in at_look.items()} for at_look in looks],
                                 fractions, ALPHA) for s in range(STUDIES)]
    return sum(null in d for d in decided) / STUDIES


def paired_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """statistics.paired's p for each row (study) of a and b (seeds in columns)."""
    d = a - b
    n = d.shape[1]
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / np.sqrt(n))
    return 2 * stats.t.sf(np.abs(t), n - 1)


def welch_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """statistics.welch's p for each row (study) of a and b (seeds in columns)."""
    va, vb = a.var(axis=1, ddof=1) / a.shape[1], b.var(axis=1, ddof=1) / b.shape[1]
    t = (a.mean(axis=1) - b.mean(axis=1)) / np.sqrt(va + vb)
    return 2 * stats.t.sf(np.abs(t), statistics.welch_df([a.shape[1], b.shape[1]]))


@pytest.mark.parametrize("null, sd_ratio", [("a", None), ("b56", None), ("b20", None), ("c", None), ("c", 4.0)])
def test_a_null_primary_contrast_is_decided_at_most_alpha_of_the_time(null, sd_ratio):
    rate = simulate(null, np.random.default_rng(41), sd_ratio)
    mcse = math.sqrt(ALPHA * (1 - ALPHA) / STUDIES)
    assert rate <= ALPHA + 3 * mcse, f"({null}) null: decided in {rate:.4f} of {STUDIES} studies"
