"""reports/NAME/study.md: every arm of a study side by side, each grid key's effect
(study_effects), and, where the grid runs plain and residual twins, the residual
gain with its confidence interval and a test across seeds, the paper's degradation
figure (Fig. 6) and layer responses (Fig. 7), and, with two depths or more, a
verdict on each of the paper's three claims drawn from the numbers, with the
curves' evidence for why where one is not shown (curve_reading)."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from tabulate import tabulate

from ablation import curve_reading, figures, files, machine, published, study_effects, study_files
from ablation.ingest import DataError
from ablation.layout import StudyFiles
from ablation.models import block_of
from ablation.reporting import final_train_error, mean_history, summarize_arm, test_accuracy
from ablation.statistics import Comparison, summarize
from ablation.study import ArmResult

ALPHA = 0.05  # "beyond seed noise" means the test's p below this
TEST_NAMES = {study_effects.PAIRED: "the paired t-test", study_effects.WELCH: "Welch's test"}


def _family(arm: ArmResult) -> str:
    return "residual" if arm.params.model.residual else "plain"


def _depth(arm: ArmResult) -> int:
    return arm.params.model.depth


def _twin_key(arm: ArmResult) -> tuple:
    """What an arm shares with its twin: every grid value but model.residual."""
    return tuple(o for o in arm.overrides if not o.startswith("model.residual="))


def _test_error(run: dict) -> float | None:
    return None if (accuracy := test_accuracy(run)) is None else 1.0 - accuracy


def _test_errors(runs: dict) -> list:
    return [_test_error(r) for r in runs.values()]


def _train_errors(runs: dict) -> list:
    return [final_train_error(r) for r in runs.values()]


def _claim(label: str, mark: str, text: str) -> str:
    return f"- **{label}: {mark}.** {text}"


def _mark(direction_as_claimed: bool | None, p_value: float | None) -> str:
    """yes: the difference goes the claimed way beyond seed noise; not shown: it
    goes that way within seed noise; no: it goes the other way."""
    if direction_as_claimed is None:
        return "cannot tell"
    if not direction_as_claimed:
        return "no"
    return "yes" if p_value is not None and p_value < ALPHA else "not shown"


def _noise(comparison: Comparison, test: str) -> str:
    if comparison.p_value is None:
        return "no test (fewer than 2 finite runs per side)"
    return f"{test} p = {comparison.p_value:.3g}: " + ("beyond seed noise" if comparison.p_value < ALPHA
                                                       else "within seed noise")


def _too_few_seeds(mark: str, comparison: Comparison, test: str, *sides: list) -> str:
    """For a claim not shown (its difference went the claimed way, within seed
    noise): how little the test had to go on, and what would decide it."""
    if mark != "not shown" or comparison.df is None:
        return ""
    seeds = min(sum(v is not None for v in side) for side in sides)
    return (f" The difference goes the claimed way, but {seeds} seeds per arm leave {TEST_NAMES[test]} "
            f"{comparison.df:.1f} degrees of freedom, so only a gap many times the seeds' spread passes it: "
            f"more seeds (`-S train.seeds=[{','.join(map(str, range(2 * seeds)))}]`) are the way to decide.")


def _chance_error(runs: dict) -> float | None:
    """Guessing's error: 1 - 1/classes, the classes those of the test split's per-class
    accuracy (None with fewer than two: nothing to guess between)."""
    classes = next((len(r["eval"]["per_class_accuracy"]) for r in runs.values()
                    if r.get("eval") and r["eval"].get("per_class_accuracy")), 0)
    return 1.0 - 1.0 / classes if classes >= 2 else None


def _curves(by_key: dict, dataset: str, depth: int, family: str) -> curve_reading.Curves:
    runs = by_key[depth][family].runs[dataset]
    errors = _error_curves(runs)
    return curve_reading.Curves(f"{family}-{depth}", errors["train_error"], errors["val_error"], _chance_error(runs))


def _explained(claim: str, mark: str, better: curve_reading.Curves, worse: curve_reading.Curves,
               on_test: bool, claimed_way: bool = False) -> str:
    """A claim's line, with the curves' evidence for why where it was not shown (and,
    where it was, for a net that never learned); `claimed_way`: the difference went
    the claimed way, within seed noise."""
    extra = curve_reading.chance_note(better, worse) if mark == "yes" else \
        curve_reading.why(better, worse, on_test, claimed_way)
    return f"{claim} {extra}" if extra else claim


def verdicts(by_key: dict, dataset: str) -> list[str]:
    """Plain-language verdicts on the paper's claims (a) degradation, (b) residual
    beats plain at each depth both were run at, (c) the deeper residual net is no
    worse, comparing the shallowest and deepest depths run in both families; each
    one not shown says why, from the curves (curve_reading). Each is tested as the
    gain table and the effects are (study_effects.compare): paired where a seed's two
    runs started alike, else Welch."""
    depths = sorted(d for d, fams in by_key.items() if {"plain", "residual"} <= fams.keys())
    if len(depths) < 2:
        return ["- Needs a plain and a residual arm at two depths or more."]
    low, high = depths[0], depths[-1]
    runs = {(d, f): by_key[d][f].runs[dataset] for d in depths for f in ("plain", "residual")}
    curves = {(d, f): _curves(by_key, dataset, d, f) for d in depths for f in ("plain", "residual")}
    a_sides = _train_errors(runs[(high, "plain")]), _train_errors(runs[(low, "plain")])
    a, a_test = study_effects.compare(runs[(high, "plain")], runs[(low, "plain")], final_train_error)
    c, c_test = study_effects.compare(runs[(high, "residual")], runs[(low, "residual")], _test_error)
    # (c) is a claim of no harm: a lower or equal error is a yes whatever its p.
    c_mark = "cannot tell" if c.difference is None else ("yes" if c.difference <= 0 else
                                                         "no" if c.p_value is not None and c.p_value < ALPHA else
                                                         "not shown")
    a_mark = _mark(None if a.difference is None else a.difference > 0, a.p_value)
    lines = [_explained(_claim(f"(a) degradation: plain-{high} has a higher training error than plain-{low}", a_mark,
                               f"final training error difference {a.format_difference()} (plain-{high} minus "
                               f"plain-{low}, 95% CI); {_noise(a, a_test)}."
                               + _too_few_seeds(a_mark, a, a_test, *a_sides)),
                        a_mark, curves[(low, "plain")], curves[(high, "plain")], on_test=False,
                        claimed_way=a_mark == "not shown")]
    for depth in reversed(depths):
        b_sides = _test_errors(runs[(depth, "residual")]), _test_errors(runs[(depth, "plain")])
        b, b_test = study_effects.compare(runs[(depth, "residual")], runs[(depth, "plain")], _test_error)
        b_mark = _mark(None if b.difference is None else b.difference < 0, b.p_value)
        lines.append(_explained(_claim(f"(b) residual-{depth} beats plain-{depth} on test error beyond seed noise",
                                       b_mark, f"test error difference {b.format_difference()} (residual minus "
                                               f"plain, 95% CI); {_noise(b, b_test)}."
                                               + _too_few_seeds(b_mark, b, b_test, *b_sides)),
                                b_mark, curves[(depth, "residual")], curves[(depth, "plain")], on_test=True,
                                claimed_way=b_mark == "not shown"))
    lines.append(_explained(_claim(
        f"(c) residual-{high} is no worse than residual-{low}", c_mark,
        f"test error difference {c.format_difference()} (residual-{high} minus residual-{low}, 95% CI); "
        f"{_noise(c, c_test)}" + ("; a higher error that these seeds cannot separate from noise, so "
                                  "not shown either way." if c_mark == "not shown" else ".")),
        c_mark, curves[(high, "residual")], curves[(low, "residual")], on_test=True))
    return lines


def _error_curves(runs: dict) -> dict[str, list[float]]:
    history = mean_history(runs)
    return {"train_error": [1 - v for v in history.get("accuracy", [])],
            "val_error": [1 - v for v in history.get("val_accuracy", [])]}


def _mean_responses(runs: dict) -> list[float] | None:
    curves = [r["responses"]["std"] for r in runs.values() if r.get("responses") and not r["train"]["diverged"]]
    return [float(v) for v in np.mean(curves, axis=0)] if curves else None


def title(results: list[ArmResult]) -> str:
    """What the study varies: the residual connection (over depths), or its grid keys."""
    keys = list(study_effects.grid_values(results))
    if "model.residual" in keys and set(keys) <= {"model.residual", "model.depth"}:
        return "what the residual connection buys"
    return "what " + " and ".join(f"`{key}`" for key in keys) + (" changes" if len(keys) == 1 else " change")


def residual_groups(done: list[ArmResult]) -> dict[str, dict]:
    """The arms the paper's sections compare: {the other grid keys' values: {depth:
    {family: arm}}}, for each such combination with a plain and a residual arm at
    one depth or more (a grid over model.residual, and maybe model.depth)."""
    groups = defaultdict(lambda: defaultdict(dict))
    for r in done:
        others = ", ".join(o for o in r.overrides if o.partition("=")[0] not in ("model.depth", "model.residual"))
        groups[others][_depth(r)][_family(r)] = r
    return {others: by_key for others, by_key in groups.items()
            if any({"plain", "residual"} <= fams.keys() for fams in by_key.values())}


def _suffix(others: str) -> str:
    return "_" + "".join(c if c.isalnum() else "_" for c in others) if others else ""


def residual_sections(by_key: dict, dataset: str, summaries: dict, out: StudyFiles, others: str) -> list[str]:
    """The paper's claims (with two depths or more), Fig. 6 and Fig. 7 for one group
    of residual_groups, and its accuracy-against-depth figure; `others` names the
    group where there are several (in headings and figure names)."""
    suffix, where = _suffix(others), f" ({others})" if others else ""
    panels, responses, points, train_rows = defaultdict(dict), defaultdict(dict), defaultdict(dict), []
    for depth in sorted(by_key):
        row = [depth]
        for family in ("plain", "residual"):
            arm = by_key[depth].get(family)
            if arm is None:
                row.append("")
                continue
            runs = arm.runs[dataset]
            panels[family][depth] = _error_curves(runs)
            if (mean_std := _mean_responses(runs)) is not None:
                responses[depth][family] = mean_std
            accuracy = summaries[arm.name][dataset]["test_accuracy"]
            if accuracy.mean is not None:
                points[family][depth] = (accuracy.mean, accuracy.ci_low, accuracy.ci_high)
            row.append(summarize(_train_errors(runs)).format())
        train_rows.append(row)
    figures.plot_degradation(dict(sorted(panels.items())), out.figure(dataset, f"degradation{suffix}"), dataset)
    figures.plot_accuracy_vs_depth(points, out.figure(dataset, f"accuracy_vs_depth{suffix}"), dataset)
    twin_depths = sum({"plain", "residual"} <= fams.keys() for fams in by_key.values())
    lines = [f"### The paper's claims{where}", "", *verdicts(by_key, dataset), ""] if twin_depths >= 2 else []
    lines += [f"### Degradation (the paper's Fig. 6){where}", "",
              "Training error (bold) and validation error (thin, dashed) per epoch, mean over seeds; plain "
              "nets left, residual nets right, same axes.", "",
              f"![degradation](figures/{dataset}_degradation{suffix}.png)", "",
              "Final training error by depth:", "",
              tabulate(train_rows, headers=["depth", "plain", "residual"], tablefmt="github", disable_numparse=True),
              ""]
    if responses:
        figures.plot_layer_responses(dict(responses), out.figure(dataset, f"layer_responses{suffix}"), dataset)
        lines += [f"### Layer responses (the paper's Fig. 7){where}", "",
                  "Standard deviation of each 3x3 layer's output (after batch normalization, before the "
                  "addition and ReLU) over 2,000 test images, by layer index, mean over seeds.", "",
                  f"![layer responses](figures/{dataset}_layer_responses{suffix}.png)", ""]
    return lines


QUEUE_LOG_HINT = "`dvc queue logs {name}`"


def _provenance(done: list[ArmResult], command: str) -> list[str]:
    """Where the runs ran (train.json's machine record) and where their raw results are."""
    machines = Counter(machine.summary(run["train"].get("machine")) for r in done for by_seed in r.runs.values()
                       for run in by_seed.values())
    ran_on = "; ".join(f"{summary} ({count} run{'s' * (count > 1)})" for summary, count in machines.items())
    return [f"Ran on: {ran_on}. The raw results of every run are in [`runs/`](runs/) (one folder per "
            f"experiment); `{command} --report-only` regenerates this report from them."]


def arms_with_results(text: str) -> set[str]:
    """The arms of a study report's first table (arm x dataset) with a result, not "failed"."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|--")), None)
    arms = set()
    for line in lines[start + 1:] if start is not None else []:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and not cells[3].startswith("failed"):
            arms.add(cells[1])
    return arms


def write_study_report(results: list[ArmResult], out: StudyFiles, command: str = "python -m stages.study",
                       log_hint: str = QUEUE_LOG_HINT, replace: bool = False) -> str:
    """reports/NAME/study.md, its figures/*.png and what DVC shows of it
    (study_files.write_dvc_view); results are study.collect()'s;
    `log_hint` says where a failed run's log is (`{name}`: the run). A report is
    never replaced by one that lost results: with no arm done, or (unless
    `replace`) with an arm failed that has results there, nothing is written and
    the DataError says how to go on."""
    done = [r for r in results if not r.failed]
    if not done:
        raise DataError(f"no arm of the study left results ({', '.join(r.name for r in results)}), so "
                        f"{out.report} is left as it is. Fix: run the study (without --report-only), or run from "
                        "the checkout that holds its experiments (`dvc exp show`).")
    # Arms of this study that the report there holds results for but that left none now
    # (their experiments are not in this checkout, say): replacing it would lose them.
    lost = sorted(arms_with_results(out.report.read_text()) & {r.name for r in results if r.failed}) \
        if out.report.exists() else []
    if lost and not replace:
        raise DataError(f"{out.report} has results for arm(s) {lost} that left none here, so it is left as it is. "
                        "Fix: run them (or run from the checkout that holds their experiments), or pass "
                        "--replace-report to replace it without them.")
    summaries = {r.name: summarize_arm(r.runs) for r in done}
    datasets = list(dict.fromkeys(d for r in done for d in r.runs))
    rows = []
    for r in results:
        if r.failed:
            hints = ", ".join(log_hint.format(name=name) for name in r.missing or [r.name])
            rows.append([r.name, "all", f"failed: see {hints}", "", "", "", "", "", "", ""])
            continue
        for dataset, s in summaries[r.name].items():
            paper = published.describe(published.published(r.params.model, block_of(r.params.model), dataset))
            rows.append([r.name, dataset, s["test_accuracy"].format(), s["train_error"].format(),
                         s["test_accuracy"].diverged, f"{s['trainable_params']:,}", f"{s['flops'] / 1e9:.3f}",
                         s["train_seconds"].format_mean(0), s["images_per_second"].format_mean(0), paper])
    headers = ["arm", "dataset", "test accuracy", "final training error", "diverged runs", "parameters",
               "GFLOPs/image", "train s", "training images/s", "paper (its full recipe)"]
    if not any(row[-1] for row in rows):  # no arm has a published number
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    lines = [f"# Study: {title(results)}", "",
             f"Every arm run as a DVC experiment: `{command}`. Each cell is the mean over seeds ± sample std "
             "[95% confidence interval of the mean, t-based] (n = finite runs). Test accuracy is on the dataset's "
             "test split; the final training error is 1 - the last epoch's accuracy on the augmented training "
             "images. A diverged run is counted in `diverged runs` and never averaged in."
             + (" The paper column is the published test error of the same network, trained with the paper's "
                "recipe (64k iterations of batch 128), whatever this study's recipe is (ablation/published.py)."
                if len(headers) == 10 else ""), "",
             tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
             *_provenance(done, command), ""]
    partial = [(r.name, name) for r in done for name in r.missing]
    if partial:
        lines += ["Runs that left no results, so their arms average fewer seeds: " + ", ".join(
            f"{name} (see {log_hint.format(name=name)})" for _, name in partial) + ".", ""]
    twins = defaultdict(dict)
    for r in done:
        twins[_twin_key(r)][_family(r)] = r
    gains = []
    for pair in twins.values():
        if {"plain", "residual"} <= pair.keys():
            for dataset in datasets:
                res, plain = pair["residual"].runs[dataset], pair["plain"].runs[dataset]
                gain, test = study_effects.compare(res, plain)
                gains.append([pair["residual"].name, pair["plain"].name, dataset, gain.format_difference(), test,
                              gain.format_p(), study_effects.mcnemar_per_seed(res, plain)])
    if gains:
        lines += ["## Accuracy gained by the residual connection", "",
                  tabulate(gains, headers=["residual arm", "plain twin", "dataset", "gain [95% CI]", "test",
                                           "p (across seeds)", "McNemar p per seed (these two models differ)"],
                           tablefmt="github", disable_numparse=True), "",
                  "The gain is the residual arm's mean test accuracy minus its plain twin's; its confidence interval "
                  "and test treat each seed as one replicate of the architecture, so they answer \"does the "
                  "residual connection help?\": a paired t-test on the per-seed gains where each seed's two runs "
                  "started from the same weights and saw the same batches (train.json's `initial_weights` and "
                  "`data_order`), else Welch's t-test. McNemar's exact test compares the two *trained "
                  "models* of one seed on the same test images: it says whether those two sets of weights differ, "
                  "not whether the architectures do.", ""]
    groups = residual_groups(done)
    for dataset in datasets:
        figures.plot_curves({r.name: mean_history(r.runs[dataset]) for r in done},
                            out.figure(dataset, "curves"), f"all arms on {dataset}")
        lines += [f"## {dataset}", "", *study_effects.effect_sections(results, dataset, out)]
        for others, by_key in groups.items():
            lines += residual_sections(by_key, dataset, summaries, out, others if len(groups) > 1 else "")
        lines += ["### Curves" + (" and accuracy against depth" if groups else ""), "",
                  f"![curves](figures/{dataset}_curves.png)", ""]
        for others in groups:
            suffix = _suffix(others) if len(groups) > 1 else ""
            lines += [f"![accuracy against depth](figures/{dataset}_accuracy_vs_depth{suffix}.png)", ""]
    text = "\n".join(lines)
    files.write_text(out.report, text)
    study_files.write_dvc_view(done, out)
    return text
