"""Comparing two arms' runs across seeds: paired by seed where a seed's two runs
ran in one block (blocks.py), else Welch's test; McNemar's test of two trained models; and every
grid key's contrasts (each value against the key's first, within each
combination of the other keys). Any grid works: the comparisons never assume
which knob was varied."""
from __future__ import annotations

from dataclasses import dataclass

from ablation.core import reading
from ablation.core.run_records import test_accuracy
from ablation.core.statistics import Comparison, mcnemar_p, paired, welch
from ablation.study.deciding import blocks
from ablation.study.deciding.decisions import Decisions
from ablation.study.grid import ArmResult

PAIRED, WELCH = "paired t", "Welch"  # the report's names of the two tests
PAIRING_RULE = ("Two arms whose runs of each seed ran in one seed block (the same machine kind, precision and "
                "backend) are compared seed by seed (a paired t-test on the per-seed differences), as are runs "
                "recorded before machines were whose runs of each seed started from the same weights and saw the "
                "same batches; any others by Welch's t-test at the smaller side's n - 1 degrees of freedom (Hsu's, "
                "which holds the test's size at a few seeds a side).")


def grid_values(results: list[ArmResult]) -> dict[str, list[str]]:
    """Each grid key that takes two values or more, with its values as the arms'
    settings spell them, in grid order (a key of one value varies nothing)."""
    grid: dict[str, list[str]] = {}
    for result in results:
        for key, value in result.spelled(result.point).items():
            if value not in grid.setdefault(key, []):
                grid[key].append(value)
    return {key: values for key, values in grid.items() if len(values) > 1}


def label(values: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "(no other grid key)"


def shared_start_seeds(runs_a: dict, runs_b: dict) -> list[int] | None:
    """The seeds both arms ran, where each seed's two runs started from the same
    initial weights and saw the same batches (train.json's initial_weights and
    data_order; runs recorded before those were kept have neither): only then
    does a seed pair the two arms' runs."""
    shared = sorted(runs_a.keys() & runs_b.keys())

    def same(seed, key):
        value = runs_a[seed]["train"].get(key)
        return value is not None and value == runs_b[seed]["train"].get(key)
    return shared if len(shared) >= 2 and all(same(s, "initial_weights") and same(s, "data_order")
                                              for s in shared) else None


def pairing_seeds(runs_a: dict, runs_b: dict) -> list[int] | None:
    """The seeds that pair two arms' runs: those where each seed's runs share a
    block (blocks.py), or, for runs recorded before machines were, started alike."""
    return blocks.paired_seeds(runs_a, runs_b) or shared_start_seeds(runs_a, runs_b)


def compare(runs: dict, reference: dict, value=test_accuracy) -> tuple[Comparison, str]:
    """runs minus reference in `value` of a run (test accuracy unless told): paired
    by seed where the seeds pair the runs (pairing_seeds), else Welch's test."""
    seeds = pairing_seeds(runs, reference)
    if seeds:
        return paired([value(runs[s]) for s in seeds], [value(reference[s]) for s in seeds]), PAIRED
    return welch([value(r) for r in runs.values()], [value(r) for r in reference.values()]), WELCH


def _correct(predictions: str | None) -> dict[str, bool]:
    return {row["id"]: row["label"] == row["predicted"] for row in reading.csv_rows(predictions)}


def mcnemar_per_seed(residual_runs: dict, plain_runs: dict) -> str:
    """'s0: 1.2e-05, s1: 0.31': exact McNemar p of the two trained models of each
    shared seed, paired by test example."""
    parts = []
    for seed in sorted(residual_runs.keys() & plain_runs.keys()):
        a, b = _correct(residual_runs[seed]["predictions"]), _correct(plain_runs[seed]["predictions"])
        ids = sorted(a.keys() & b.keys())
        if ids:
            p_value = mcnemar_p([a[i] for i in ids], [b[i] for i in ids])
            parts.append(f"s{seed}: {p_value:.2g}" if p_value > 0 else f"s{seed}: <1e-300")  # below float range
    return ", ".join(parts) or "n/a"


@dataclass(frozen=True)
class Contrast:
    key: str
    others: str
    value: str
    reference: str
    comparison: Comparison
    test: str
    arms: frozenset  # the two arms' names: what identifies the contrast wherever the report prints it


def contrasts(results: list[ArmResult], dataset: str) -> list[Contrast]:
    """Every value of every grid key against its reference value, within each
    combination of the other keys, on `dataset`."""
    grid = grid_values(results)
    by_point = {tuple(sorted(r.spelled(grid).items())): r for r in results if dataset in r.runs}
    out = []
    for key, values in grid.items():
        for result in (r for r in results if dataset in r.runs):
            here = result.spelled(grid)
            if here[key] == values[0]:
                continue
            reference = by_point.get(tuple(sorted({**here, key: values[0]}.items())))
            if reference is None:
                continue
            comparison, test = compare(result.runs[dataset], reference.runs[dataset])
            others = label({k: v for k, v in here.items() if k != key})
            out.append(Contrast(key, others, here[key], values[0], comparison, test,
                                frozenset((result.name, reference.name))))
    return out


def add_grid_contrasts(results: list[ArmResult], dataset: str, decisions: Decisions) -> None:
    """Every grid key's contrasts on `dataset` into `decisions` (before its adjust)."""
    for c in contrasts(results, dataset):
        decisions.add(("test", c.arms), f"test accuracy, {c.key}={c.value} minus {c.key}={c.reference} ({c.others})",
                      c.comparison, c.test, c.key)
