"""The contrasts that test the paper's three claims on one group of a study's arms
(plain and residual twins at two depths or more), each in the primary family
(decisions) under the name `claims`:

(a) degradation, as the paper means it: depth raises the plain net's training
    error more than the residual net's, the depth x residual interaction on
    final training error, (plain-deep - plain-shallow) - (residual-deep -
    residual-shallow), beside each family's own depth effect;
(b) the residual net has a lower test error than its plain twin, at each depth;
(c) the deeper residual net has a lower test error than the shallower one.

Contrasts are paired by seed where each seed's runs share a block (blocks.py):
(b) and (c) are paired t-tests, (a) the t-test of the per-seed interactions.
Runs recorded before machines were pair where twins started alike (same initial
weights and batches), (a) then Welch's test of the per-seed twin differences at
the two depths; otherwise Welch over the arms' seeds. The report
says them in plain language (report/claims.py).
"""
from __future__ import annotations

from collections import defaultdict

from ablation.core.run_records import final_train_error, test_accuracy
from ablation.core.statistics import contrast, paired_differences
from ablation.study.deciding import blocks
from ablation.study.deciding.comparisons import compare, shared_start_seeds
from ablation.study.deciding.decisions import CLAIMS, Decisions
from ablation.study.grid import ArmResult

PER_SEED = "paired t on per-seed interactions"  # (a) where a seed's four runs share a block
TWIN_DIFFERENCES = "Welch on twin differences"  # (a) where each depth's twins pair by seed
FOUR_ARMS = "Welch, 4 arms"  # (a) where they do not


def test_error(run: dict) -> float | None:
    return None if (accuracy := test_accuracy(run)) is None else 1.0 - accuracy


def pair(a, b) -> frozenset:
    return frozenset((a.name, b.name))


def _interaction(by_key: dict, dataset: str, low: int, high: int):
    """(a): the plain family's rise in final training error from `low` to `high` minus
    the residual family's: per seed where the four arms' runs of each seed share a
    block, else on the twin differences where each depth's twins pair, else over
    the four arms' seeds."""
    runs = {(d, f): by_key[d][f].runs[dataset] for d in (low, high) for f in ("plain", "residual")}
    if seeds := blocks.paired_seeds(*runs.values()):
        return contrast([interaction_by_seed(runs, low, high, seeds).values()], [1]), PER_SEED
    twins = [shared_start_seeds(runs[(d, "plain")], runs[(d, "residual")]) for d in (high, low)]
    if all(twins):
        groups = [paired_differences([final_train_error(runs[(d, "plain")][s]) for s in seeds],
                                     [final_train_error(runs[(d, "residual")][s]) for s in seeds])
                  for d, seeds in zip((high, low), twins)]
        return contrast(groups, [1, -1]), TWIN_DIFFERENCES
    groups = [[final_train_error(r) for r in runs[key].values()]
              for key in ((high, "plain"), (low, "plain"), (high, "residual"), (low, "residual"))]
    return contrast(groups, [1, -1, -1, 1]), FOUR_ARMS


def interaction_by_seed(runs: dict, low: int, high: int, seeds: list[int]) -> dict[int, float]:
    """{seed: (plain-high - plain-low) - (residual-high - residual-low)} in final training error."""
    out = {}
    for s in seeds:
        error = {key: final_train_error(by_seed[s]) for key, by_seed in runs.items()}
        if None not in error.values():
            out[s] = (error[(high, "plain")] - error[(low, "plain")]) - (error[(high, "residual")]
                                                                         - error[(low, "residual")])
    return out


def depths_of(by_key: dict) -> list[int]:
    return sorted(d for d, fams in by_key.items() if {"plain", "residual"} <= fams.keys())


def add_claims(by_key: dict, dataset: str, decisions: Decisions) -> None:
    """Every contrast the claims of this group test, into `decisions` (before its adjust)."""
    depths = depths_of(by_key)
    if len(depths) < 2:
        return
    low, high = depths[0], depths[-1]
    arm = {(d, f): by_key[d][f] for d in depths for f in ("plain", "residual")}
    comparison, test = _interaction(by_key, dataset, low, high)
    decisions.add(interaction_key(arm, low, high), f"(a) depth x residual on training error, {high} vs {low}",
                  comparison, test, CLAIMS)
    for depth in reversed(depths):
        res, plain = arm[(depth, "residual")], arm[(depth, "plain")]
        decisions.add(("test", pair(res, plain)), f"(b) test error, residual-{depth} minus plain-{depth}",
                      *compare(res.runs[dataset], plain.runs[dataset], test_error), CLAIMS)
    res_high, res_low = arm[(high, "residual")], arm[(low, "residual")]
    decisions.add(("test", pair(res_high, res_low)), f"(c) test error, residual-{high} minus residual-{low}",
                  *compare(res_high.runs[dataset], res_low.runs[dataset], test_error), CLAIMS)
    # Not claims: each family's own depth effect beside (a), and the training-error gaps the reasons cite.
    for family in ("plain", "residual"):
        _train_gap(decisions, arm[(high, family)], arm[(low, family)], dataset)
    for depth in depths:
        _train_gap(decisions, arm[(depth, "residual")], arm[(depth, "plain")], dataset)


def interaction_key(arm: dict, low: int, high: int) -> tuple:
    return ("interaction", tuple(arm[(d, f)].name for d in (high, low) for f in ("plain", "residual")))


def _train_gap(decisions: Decisions, a, b, dataset: str) -> None:
    decisions.add(("train", pair(a, b)), f"final training error, {a.name} minus {b.name}",
                  *compare(a.runs[dataset], b.runs[dataset], final_train_error), "")


def family(arm: ArmResult) -> str:
    return "residual" if arm.params.model.residual else "plain"


def residual_groups(done: list[ArmResult]) -> dict[str, dict]:
    """The arms the paper's sections compare: {the other grid keys' values: {depth:
    {family: arm}}}, for each such combination with a plain and a residual arm at
    one depth or more (a grid over model.residual, and maybe model.depth)."""
    groups = defaultdict(lambda: defaultdict(dict))
    for r in done:
        others = ", ".join(r.settings("model.depth", "model.residual"))
        groups[others][r.params.model.depth][family(r)] = r
    return {others: by_key for others, by_key in groups.items()
            if any({"plain", "residual"} <= fams.keys() for fams in by_key.values())}


def twin_pairs(done: list[ArmResult]) -> list[dict]:
    """{family: arm} of each residual arm and its plain twin (every other grid value shared)."""
    twins = defaultdict(dict)
    for r in done:
        twins[r.settings("model.residual")][family(r)] = r
    return [twin for twin in twins.values() if {"plain", "residual"} <= twin.keys()]
