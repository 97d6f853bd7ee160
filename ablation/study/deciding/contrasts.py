"""Every contrast a study tests on one dataset, in the families the decision rule
adjusts (decisions): the paper's claims, each residual arm against its plain
twin, and every grid key's values. The report prints these; `--until-decided`
decides its rounds by the same ones (rounds.py)."""
from __future__ import annotations

from ablation.study.deciding.claims import add_claims, residual_groups, twin_pairs
from ablation.study.deciding.comparisons import add_grid_contrasts, compare, grid_values
from ablation.study.deciding.decisions import Decisions, Design
from ablation.study.grid import ArmResult


def decisions_for(results: list[ArmResult], done: list[ArmResult], dataset: str, design: Design,
                  sequential: dict | None = None) -> Decisions:
    """Every contrast the report tests on `dataset`, claims first (their labels name them),
    adjusted; `sequential`: what the group-sequential design decided (study run in rounds)."""
    groups = residual_groups(done)
    has_claims = any(sum({"plain", "residual"} <= f.keys() for f in by_key.values()) >= 2 for by_key in groups.values())
    tests = Decisions(design, has_claims, tuple(grid_values(results)), sequential)
    for by_key in groups.values():
        add_claims(by_key, dataset, tests)
    for twin in twin_pairs(done):
        res, plain = twin["residual"], twin["plain"]
        tests.add(("test", frozenset((res.name, plain.name))), f"test accuracy, {res.name} minus {plain.name}",
                  *compare(res.runs[dataset], plain.runs[dataset]), "model.residual")
    add_grid_contrasts(done, dataset, tests)
    tests.adjust()
    return tests
