"""Seed blocks (ablation/study/deciding/blocks.py): a contrast whose sides ran each
seed in one block is paired by seed; the block x contrast test says how it moved."""
import pytest
from scipy import stats

from ablation.study.deciding import blocks
from ablation.study.deciding.comparisons import PAIRED, WELCH, compare
from tests.conftest import run

BF16 = {"cpu": "Xeon", "cpu_flags": ["amx_tile"], "gpus": [], "backend": "tensorflow", "threads": 1}
FP32 = {**BF16, "cpu": "Xeon without AMX", "cpu_flags": []}


def on(test_accuracy: float, where: dict | None, precision: str = "float32") -> dict:
    done = run(test_accuracy, 0.9, [True])
    if where is not None:
        done["train"].update(machine=where, mixed_precision=precision)
    return done


def test_sides_that_share_each_seed_s_block_are_paired_by_seed_whatever_their_weights():
    # residual-56 vs residual-20: different nets, so different initial weights, but each seed's two runs shared
    # machine and precision: seeds 0-1 in bf16 on one CPU, 2-3 in float32 on another
    deep = {0: on(0.53, BF16, "mixed_bfloat16"), 1: on(0.58, BF16, "mixed_bfloat16"), 2: on(0.65, FP32),
            3: on(0.62, FP32)}
    shallow = {0: on(0.73, BF16, "mixed_bfloat16"), 1: on(0.71, BF16, "mixed_bfloat16"), 2: on(0.74, FP32),
               3: on(0.71, FP32)}
    comparison, test = compare(deep, shallow)
    differences = [deep[s]["eval"]["accuracy"] - shallow[s]["eval"]["accuracy"] for s in range(4)]
    assert test == PAIRED and comparison.p_value == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    said = blocks.block_effect(dict(enumerate(differences)), deep)
    groups = [differences[:2], differences[2:]]
    assert said.startswith(f"by block: {sum(groups[0]) / 2:+.4f} in mixed_bfloat16 (seeds 0, 1); "
                           f"{sum(groups[1]) / 2:+.4f} in float32 (seeds 2, 3); block x contrast F(1, 2) = ")
    assert said.endswith(f"p = {stats.f_oneway(*groups).pvalue:.3g}")


def test_a_seed_run_in_another_block_on_one_side_is_not_paired():
    deep = {0: on(0.53, BF16), 1: on(0.58, BF16), 2: on(0.65, FP32)}
    shallow = {0: on(0.73, BF16), 1: on(0.71, FP32), 2: on(0.74, FP32)}  # seed 1 moved machines on one side
    assert blocks.paired_seeds(deep, shallow) is None and compare(deep, shallow)[1] == WELCH
    unrecorded = {s: on(a, None) for s, a in enumerate([0.5, 0.6, 0.7])}
    assert blocks.paired_seeds(unrecorded, unrecorded) is None  # no machine record: the older start rule decides
    assert blocks.block_effect({0: 0.1, 1: 0.2}, {0: on(0.5, BF16), 1: on(0.5, BF16)}) == ""  # one block


def test_the_committed_cifar_report_names_its_blocks_and_pairs_every_claim():
    """Seeds 0-1 of the committed CIFAR-10 study ran in bf16 on one machine kind, 2-3 in
    float32 on another (rounds 2 and 3 of --until-decided): two blocks, and every claim
    is paired by seed with its block x contrast test."""
    from ablation.report.study_report import _rounds
    from tests.conftest import ROOT
    assert _rounds({0, 1}, (2, 3, 4)) == " (round 1)" and _rounds({2, 3}, (2, 3, 4)) == " (rounds 2, 3)"
    text = (ROOT / "reports" / "cifar10-cpu" / "study.md").read_text()
    blocks_line = next(line for line in text.splitlines() if line.startswith("Seed blocks"))
    assert "seeds 0, 1 (round 1): `mixed_bfloat16 on " in blocks_line
    assert "seeds 2, 3 (rounds 2, 3): `float32 on " in blocks_line
    claims = [line for line in text.splitlines() if line.startswith("- **(")]
    assert len(claims) == 4 and all("Welch" not in claim.split("Why")[0] for claim in claims)
    assert all("block x contrast F(1, 2)" in claim for claim in claims)
