"""The paper's three claims, said in plain language from what their contrasts
decided (study/deciding/claims.py tests them): "yes" or "no" only when the
decision rule says beyond seed noise, else "not shown", with the curves'
evidence (curve_reading), each reason with its own test.
"""
from __future__ import annotations

from ablation.core.run_records import mean_history
from ablation.report import curve_reading
from ablation.study.deciding import blocks
from ablation.study.deciding.claims import depths_of, interaction_by_seed, interaction_key, pair, test_error
from ablation.study.deciding.comparisons import compare, pairing_seeds
from ablation.study.deciding.decisions import Decisions


def _chance_error(runs: dict) -> float | None:
    """Guessing's error: 1 - 1/classes, the classes those of the test split's per-class
    accuracy (None with fewer than two: nothing to guess between)."""
    classes = next((len(r["eval"]["per_class_accuracy"]) for r in runs.values()
                    if r.get("eval") and r["eval"].get("per_class_accuracy")), 0)
    return 1.0 - 1.0 / classes if classes >= 2 else None


def chance_error(by_key: dict, dataset: str) -> float | None:
    return next((e for fams in by_key.values() for arm in fams.values()
                 if (e := _chance_error(arm.runs[dataset])) is not None), None)


def error_curves(runs: dict) -> dict[str, list]:
    """Mean training and validation error per epoch (Fig. 6's curves), and the learning rate."""
    history = mean_history(runs)
    return {"train_error": [1 - v for v in history.get("accuracy", [])],
            "val_error": [1 - v for v in history.get("val_accuracy", [])],
            "learning_rate": history.get("learning_rate", [])}


def curves(arm, dataset: str, label: str) -> curve_reading.Curves:
    runs = arm.runs[dataset]
    errors = error_curves(runs)
    return curve_reading.Curves(label, errors["train_error"], errors["val_error"], _chance_error(runs),
                                tuple(errors["learning_rate"]))


def _mark(difference: float | None, tested, claimed_sign: int) -> str:
    """yes / no: the difference goes the claimed way / the other way beyond seed noise
    (Holm); not shown: within seed noise (not shown yet: at a look before the last of
    a study run in rounds); cannot tell: no test."""
    if difference is None or not tested.tested:
        return "cannot tell"
    if not tested.beyond_noise:
        return "not shown yet" if tested.open_at_interim else "not shown"
    return "yes" if difference * claimed_sign > 0 else "no"


def _line(label: str, mark: str, text: str, reason: str = "") -> str:
    return f"- **{label}: {mark}.** {text}" + (f" {reason}" if reason else "")


def _reason(mark: str, better, worse, on_test: bool, claimed_way: bool, gap) -> str:
    """The curves' evidence: for a claim not shown, why; for one shown, a net that never learned."""
    if mark == "yes":
        return curve_reading.chance_note(better, worse)
    return curve_reading.why(better, worse, on_test, claimed_way, gap)


def lines(by_key: dict, dataset: str, decisions: Decisions) -> list[str]:
    """The claims of one group, from `decisions` (after its adjust)."""
    depths = depths_of(by_key)
    if len(depths) < 2:
        return ["- Needs a plain and a residual arm at two depths or more."]
    low, high = depths[0], depths[-1]
    arm = {(d, f): by_key[d][f] for d in depths for f in ("plain", "residual")}
    curve = {(d, f): curves(arm[(d, f)], dataset, f"{f}-{d}") for d in depths for f in ("plain", "residual")}
    a = decisions[interaction_key(arm, low, high)]
    a_mark = _mark(a.comparison.difference, a, +1)
    plain_depth, res_depth = (decisions[("train", pair(arm[(high, f)], arm[(low, f)]))] for f in ("plain", "residual"))
    out = [_line(f"(a) degradation: going from depth {low} to {high} raises plain nets' training error more than "
                 "residual nets'", a_mark,
                 f"depth x residual interaction on final training error {a.comparison.format_difference()} "
                 f"((plain-{high} - plain-{low}) - (residual-{high} - residual-{low}){_ci_said(a.comparison)}); "
                 f"{a.noise()}. " + _by_block(_a_by_seed(arm, dataset, low, high), arm[(high, "plain")], dataset)
                 + f"Each family's own depth effect: plain {plain_depth.comparison.format_difference()} "
                 f"({plain_depth.noise()}), residual {res_depth.comparison.format_difference()} ({res_depth.noise()})."
                 + _both_worse(plain_depth, res_depth, low, high),
                 _reason(a_mark, curve[(low, "plain")], curve[(high, "plain")], False,
                         a_mark.startswith("not shown") and (a.comparison.difference or 0) > 0, plain_depth))]
    for depth in reversed(depths):
        out.append(_test_error_claim(f"(b) residual-{depth} has a lower test error than plain-{depth}",
                                     "residual minus plain", arm[(depth, "residual")], arm[(depth, "plain")],
                                     curve[(depth, "residual")], curve[(depth, "plain")], dataset, decisions))
    out.append(_test_error_claim(f"(c) residual-{high} has a lower test error than residual-{low}",
                                 f"residual-{high} minus residual-{low}", arm[(high, "residual")],
                                 arm[(low, "residual")], curve[(high, "residual")], curve[(low, "residual")], dataset,
                                 decisions))
    return out


def _ci_said(comparison) -> str:
    """What the bracket after a difference is: its 95% CI, or why there is none."""
    return ", 95% CI" if comparison.ci_low is not None else "; no CI: one seed on a side"


def _test_error_claim(label: str, order: str, better, worse, better_curve, worse_curve, dataset: str,
                      decisions: Decisions) -> str:
    """A claim that `better` has a lower test error than `worse` ((b) and (c)), its reason
    citing the test of their final training errors."""
    tested = decisions[("test", pair(better, worse))]
    difference, _ = compare(better.runs[dataset], worse.runs[dataset], test_error)
    mark = _mark(difference.difference, tested, -1)
    errors = {s: (test_error(better.runs[dataset][s]), test_error(worse.runs[dataset][s]))
              for s in pairing_seeds(better.runs[dataset], worse.runs[dataset]) or []}
    by_seed = {s: b - w for s, (b, w) in errors.items() if None not in (b, w)}
    return _line(label, mark, f"test error difference {difference.format_difference()} ({order}"
                              f"{_ci_said(difference)}); "
                              f"{tested.noise()}." + f" {_by_block(by_seed, better, dataset)}".rstrip(),
                 _reason(mark, better_curve, worse_curve, True,
                         mark.startswith("not shown") and (difference.difference or 0) < 0,
                         decisions[("train", pair(better, worse))]))


def _a_by_seed(arm: dict, dataset: str, low: int, high: int) -> dict[int, float]:
    runs = {(d, f): arm[(d, f)].runs[dataset] for d in (low, high) for f in ("plain", "residual")}
    seeds = blocks.paired_seeds(*runs.values())
    return interaction_by_seed(runs, low, high, seeds) if seeds else {}


def _by_block(by_seed: dict[int, float], arm, dataset: str) -> str:
    """The contrast per seed block and the block x contrast test, where its seeds ran
    in more than one block: 'By block: ... . '."""
    said = blocks.block_effect(by_seed, arm.runs[dataset]) if by_seed else ""
    return f"{said[0].upper()}{said[1:]}. " if said else ""


def _both_worse(plain_depth, res_depth, low: int, high: int) -> str:
    """When depth raises both families' training error beyond seed noise, the plain
    family's rise is not degradation alone: the training is too short for either."""
    if not (plain_depth.beyond_noise and res_depth.beyond_noise
            and plain_depth.comparison.difference > 0 and res_depth.comparison.difference > 0):
        return ""
    return (f" Both families train worse at depth {high} than at {low}, beyond seed noise: at this length of "
            "training depth slows the residual nets too, so only the interaction, how much more it hurts the "
            "plain nets, speaks to the paper's degradation.")
