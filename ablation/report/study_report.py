"""reports/NAME/study.md: every arm of a study side by side, the decision rule
(decisions), each grid key's effect (effects), and, where the grid runs
plain and residual twins, the residual gain with its confidence interval and a
test across seeds, the paper's degradation figure (Fig. 6) and layer responses
(Fig. 7), and, with two depths or more, a verdict on each of the paper's three
claims (claims); then how many seeds would decide each contrast."""
from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np
from tabulate import tabulate

from ablation.core import atomic_files, escaping, machine
from ablation.core.errors import DataError
from ablation.core.layout import StudyFiles
from ablation.core.run_records import final_train_error, mean_history, summarize_arm
from ablation.core.statistics import summarize
from ablation.nets.models import block_of
from ablation.report import claims, dvc_view, effects, figures, published
from ablation.study import raw_records
from ablation.study.deciding import blocks, decisions
from ablation.study.deciding.claims import residual_groups, twin_pairs
from ablation.study.deciding.comparisons import PAIRING_RULE, compare, grid_values, mcnemar_per_seed
from ablation.study.deciding.contrasts import decisions_for
from ablation.study.deciding.decisions import Decisions, Design
from ablation.study.deciding.rounds import reached
from ablation.study.grid import ArmResult


def _train_errors(runs: dict) -> list:
    return [final_train_error(r) for r in runs.values()]


def _mean_responses(runs: dict) -> list[float] | None:
    curves = [r["responses"]["std"] for r in runs.values()
              if r.get("responses") and r["responses"]["std"] and not r["train"]["diverged"]]
    return [float(v) for v in np.mean(curves, axis=0)] if curves else None


def title(results: list[ArmResult]) -> str:
    """What the study varies: the residual connection (over depths), or its grid keys."""
    keys = list(grid_values(results))
    if "model.residual" in keys and set(keys) <= {"model.residual", "model.depth"}:
        return "what the residual connection buys"
    return "what " + " and ".join(f"`{key}`" for key in keys) + (" changes" if len(keys) == 1 else " change")


def _suffix(others: str) -> str:
    return "_" + "".join(c if c.isalnum() else "_" for c in others) if others else ""


def residual_sections(by_key: dict, dataset: str, summaries: dict, out: StudyFiles, others: str,
                      tests: Decisions) -> list[str]:
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
            panels[family][depth] = claims.error_curves(runs)
            if (mean_std := _mean_responses(runs)) is not None:
                responses[depth][family] = mean_std
            accuracy = summaries[arm.name][dataset]["test_accuracy"]
            if accuracy.mean is not None:
                points[family][depth] = (accuracy.mean, accuracy.ci_low, accuracy.ci_high)
            row.append(summarize(_train_errors(runs)).format())
        train_rows.append(row)
    figures.plot_degradation(dict(sorted(panels.items())), out.figure(dataset, f"degradation{suffix}"), dataset,
                             claims.chance_error(by_key, dataset))
    figures.plot_accuracy_vs_depth(points, out.figure(dataset, f"accuracy_vs_depth{suffix}"), dataset)
    twin_depths = sum({"plain", "residual"} <= fams.keys() for fams in by_key.values())
    lines = ([f"### The paper's claims{where}", "", *claims.lines(by_key, dataset, tests), ""]
             if twin_depths >= 2 else [])
    lines += [f"### Degradation (the paper's Fig. 6){where}", "",
              "Training error (bold) and validation error (thin, dashed) per epoch, mean over seeds; plain "
              "nets left, residual nets right, same axes; the dotted line is guessing's error.", "",
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


def _provenance(done: list[ArmResult], command: str, looks: tuple[int, ...] | None = None) -> list[str]:
    """Where the runs ran (train.json's machine record; per arm where they ran on more
    than one machine kind) and where their raw results are."""
    by_arm = {r.name: Counter(machine.summary(run["train"].get("machine")) for by_seed in r.runs.values()
                              for run in by_seed.values()) for r in done}
    machines = sum(by_arm.values(), Counter())
    if len(machines) == 1:
        ran_on = "; ".join(f"{escaping.code(summary)} ({count} run{'s' * (count > 1)})"
                           for summary, count in machines.items())
    else:
        ran_on = "more than one machine kind, so an arm's seeds differ by the machine too: " + "; ".join(
            f"{name} on " + ", ".join(f"{escaping.code(summary)} ({count})" for summary, count in counts.items())
            for name, counts in by_arm.items())
    return [f"Ran on: {ran_on}. The raw results of every run are in [`runs/`](runs/) (one "
            f"folder per experiment); {escaping.code(command + ' --report-only')} regenerates this report from them.",
            *_seed_blocks(done, looks)]


def _rounds(seeds: set[int], looks: tuple[int, ...] | None) -> str:
    """' (round 1)': the rounds of --until-decided (its `looks`) these seeds ran in."""
    if not looks:
        return ""
    rounds = sorted({next((k for k, n in enumerate(looks) if s < n), len(looks) - 1) + 1 for s in seeds})
    return f" (round{'s' * (len(rounds) > 1)} {', '.join(map(str, rounds))})"


def _seed_blocks(done: list[ArmResult], looks: tuple[int, ...] | None) -> list[str]:
    """The seed blocks (deciding/blocks.py), where the runs fall in more than one, with
    the rounds their seeds ran in."""
    seeds: dict[tuple, set] = {}
    for r in done:
        for runs in r.runs.values():
            for of, in_block in blocks.seed_blocks(runs).items():
                seeds.setdefault(of, set()).update(in_block)
    if len(seeds) < 2:
        return []
    return ["", "Seed blocks (what a seed's runs share; a contrast whose sides ran each seed in one block is "
            "tested paired by seed, and each primary claim says how it moved between blocks): " + "; ".join(
                f"seed{'s' * (len(s) > 1)} {', '.join(map(str, sorted(s)))}{_rounds(s, looks)}: "
                f"{escaping.code(blocks.label(of))}"
                for of, s in seeds.items()) + "."]


def _rule(design: Design, all_tests: dict[str, Decisions]) -> list[str]:
    """The decision rule, stated once, with each dataset's family sizes."""
    sizes = "; ".join(f"{dataset}: {len(t.family(decisions.PRIMARY))} primary, "
                      f"{len(t.family(decisions.SECONDARY))} secondary" for dataset, t in all_tests.items())
    primary = next(iter(all_tests.values())).primary_names() if all_tests else ()
    named = ", ".join("the paper's claims" if p == decisions.CLAIMS else f"every contrast of `{p}`" for p in primary)
    return ["## Decision rule", "",
            f"Primary contrasts: {named or 'none'}" + (" (the preset's `report.primary`)" if design.primary else
                                                       " (the default: the preset names none)")
            + f"; every other contrast the report tests is secondary ({sizes}). Holm's procedure adjusts each "
            "family's p-values on its own; every p is printed with its test and degrees of freedom; with one seed "
            f"on a side no CI, test or verdict is printed (\"{decisions.NO_TEST}\"). "
            + (f"A primary verdict word (\"yes\", \"no\", \"beyond seed noise\") comes from the group-sequential "
               f"design this study ran by (`--until-decided`, looks at {list(design.looks)} seeds per arm: "
               "O'Brien-Fleming-type alpha spending with Holm's procedure made sequential, "
               "ablation/study/deciding/sequential.py): the p at the look that decided it below that look's "
               "bound. The fixed-design Holm p printed beside it is not the rule's basis: after stopping early it "
               "would find noise beyond seed noise more often than 5% of the time. A secondary verdict comes from "
               f"a Holm-adjusted p below {decisions.ALPHA}."
               if design.looks else
               f"A verdict word (\"yes\", \"no\", \"beyond seed noise\") comes only from a Holm-adjusted p below "
               f"{decisions.ALPHA}.")
            + (f" These results are the design's look at {design.reached} seeds per arm, not its last: a contrast "
               "not decided yet is open, and the same command adds the next round." if design.interim else ""), ""]


def _recipe(done: list[ArmResult], dataset: str) -> str:
    """The training recipe, from the first arm's params (grid keys vary it per arm), and
    the precision each run trained in (its train.json's record)."""
    train = done[0].params.train.for_dataset(dataset)
    schedule = train.schedule
    if schedule == "step":
        drops = ", ".join(f"{b * train.epochs:g}" for b in train.step_boundaries)
        schedule += f" (lr / 10 after epoch{'s' * (len(train.step_boundaries) > 1)} {drops})"
    precisions = Counter(run["train"].get("mixed_precision") or r.params.train.for_dataset(dataset).mixed_precision
                         for r in done for run in r.runs.get(dataset, {}).values())
    ran_in = ", ".join(f"{policy} ({count} run{'s' * (count > 1)})" for policy, count in precisions.items())
    return (f"Recipe on {dataset}: {train.epochs} epochs of batch {train.batch_size}, {train.optimizer} at lr "
            f"{train.learning_rate:g}, {schedule} schedule, seeds "
            f"{sorted({s for r in done for s in r.runs.get(dataset, {})})}; trained in {ran_in}.")


PAPER_COLUMN = "paper (its full recipe)"


def _arm_rows(results: list[ArmResult], summaries: dict, log_hint: str) -> tuple[list, list]:
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
               "GFLOPs/image", "train s", "training images/s", PAPER_COLUMN]
    if not any(row[-1] for row in rows):  # no arm has a published number
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return headers, rows


def _gain_section(done: list[ArmResult], all_tests: dict[str, Decisions]) -> list[str]:
    gains = []
    for pair in twin_pairs(done):
        for dataset, tests in all_tests.items():
            res, plain = pair["residual"].runs[dataset], pair["plain"].runs[dataset]
            gain, _ = compare(res, plain)
            tested = tests[("test", frozenset((pair["residual"].name, pair["plain"].name)))]
            gains.append([pair["residual"].name, pair["plain"].name, dataset, gain.format_difference(),
                          tested.test_label(), gain.format_p() if tested.tested else "", tested.format_holm(),
                          tested.family, mcnemar_per_seed(res, plain)])
    if not gains:
        return []
    return ["## Accuracy gained by the residual connection", "",
            tabulate(gains, headers=["residual arm", "plain twin", "dataset", "gain [95% CI]", "test", "p", "Holm p",
                                     "family", "McNemar p per seed (these two models differ)"],
                     tablefmt="github", disable_numparse=True), "",
            "The gain is the residual arm's mean test accuracy minus its plain twin's; its confidence interval "
            "and test treat each seed as one replicate of the architecture, so they answer \"does the "
            f"residual connection help?\". {PAIRING_RULE} The Holm p is the one of its family. "
            "McNemar's exact test compares the two *trained models* of one seed on the same test images: it says "
            "whether those two sets of weights differ, not whether the architectures do.", ""]


def headline(text: str) -> list[str]:
    """What a terminal shows of a study report: its title and the paper's claims'
    verdicts, each with its interval and the dataset (the `## DATASET` section) it is on."""
    lines, shown, section = text.splitlines(), [], ""
    for line in lines[1:]:
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("- **("):
            shown.append(f"- {section}: {line[2:]}")
    return [lines[0], *shown]


def _how_to_decide(done: list[ArmResult], dataset: str, tests: Decisions, command: str) -> list[str]:
    seeds_now = min(len(by_seed) for r in done if (by_seed := r.runs.get(dataset)))
    return decisions.how_to_decide(tests, seeds_now, command)


def seeds_plan(results: list[ArmResult], design: Design, command: str) -> list[str]:
    """The "How to decide" part of each dataset, for a study's committed results (--dry-run)."""
    done = [r for r in results if not r.failed]
    lines = []
    for dataset in dict.fromkeys(d for r in done for d in r.runs):
        lines += [f"How to decide, {dataset} (from the committed results):", "",
                  *_how_to_decide(done, dataset, decisions_for(results, done, dataset, design), command)]
    return lines


def _keep_or_refuse(results: list[ArmResult], out: StudyFiles, replace: bool) -> list[ArmResult]:
    """The arms that left results; refused (DataError) when writing would lose results
    the report there holds."""
    done = [r for r in results if not r.failed]
    if not done:
        raise DataError(f"no arm of the study left results ({', '.join(r.name for r in results)}), so "
                        f"{out.report} is left as it is. Fix: run the study (without --report-only), or run from "
                        "the checkout that holds its experiments (`dvc exp show`).")
    # Arms of this study that the report there holds results for but that left none now
    # (their experiments are not in this checkout, say): replacing it would lose them.
    lost = sorted(raw_records.arms_with_results(out) & {r.name for r in results if r.failed}) \
        if out.report.exists() else []
    if lost and not replace:
        raise DataError(f"{out.report} has results for arm(s) {lost} that left none here, so it is left as it is. "
                        "Fix: run them (or run from the checkout that holds their experiments), or pass "
                        "--replace-report to replace it without them.")
    return done


def _decide(results: list[ArmResult], done: list[ArmResult], datasets: list[str],
            design: Design) -> tuple[dict[str, Decisions], Design]:
    """Each dataset's tested contrasts; where the study ran in rounds, its primary
    verdicts are the group-sequential design's at the last look reached."""
    decided = None
    if design.looks:
        decided, at = reached(done, list(design.looks), dataclasses.replace(design, looks=None))
        design = dataclasses.replace(design, reached=design.looks[at])
    return {dataset: decisions_for(results, done, dataset, design, None if decided is None else
                                   {key: look for (d, key), look in decided.items() if d == dataset})
            for dataset in datasets}, design


def _overview(results: list[ArmResult], done: list[ArmResult], summaries: dict, datasets: list[str],
              command: str, log_hint: str, design: Design) -> list[str]:
    """The report's top: title, every arm's table, recipe, provenance and caveats."""
    headers, rows = _arm_rows(results, summaries, log_hint)
    has_paper = headers[-1] == PAPER_COLUMN
    lines = [f"# Study: {title(results)}", ""]
    if design.smoke_test:
        lines += ["**A smoke test of the machinery: too few steps for its numbers to say anything about the "
                  "networks.**", ""]
    lines += [f"Every arm run as a DVC experiment: {escaping.code(command)}. Each cell is the mean over seeds ± "
              "sample std [95% confidence interval of the mean, t-based] (n = finite runs). Test accuracy is on the "
              "dataset's test split; the final training error is 1 - the last epoch's accuracy on the augmented "
              "training images. A diverged run is counted in `diverged runs` and never averaged in."
              + (" The paper column is the published test error of the same network, trained with the paper's "
                 "recipe (64k iterations of batch 128), whatever this study's recipe is (ablation/report/published.py)."
                 if has_paper else ""), "",
              tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
              *(_recipe(done, dataset) for dataset in datasets), "", *_provenance(done, command, design.looks), ""]
    if design.caveats:
        lines += ["What this design cannot show:", "", *(f"- {caveat}" for caveat in design.caveats), ""]
    partial = [(r.name, name) for r in done for name in r.missing]
    if partial:
        lines += ["Runs that left no results, so their arms average fewer seeds: " + ", ".join(
            f"{name} (see {log_hint.format(name=name)})" for _, name in partial) + ".", ""]
    return lines


def _dataset_section(results: list[ArmResult], done: list[ArmResult], dataset: str, summaries: dict,
                     out: StudyFiles, tests: Decisions, command: str) -> list[str]:
    """One dataset's part: each grid key's effect, the paper's sections, curves, how to decide."""
    groups = residual_groups(done)
    figures.plot_curves({r.name: mean_history(r.runs[dataset]) for r in done},
                        out.figure(dataset, "curves"), f"all arms on {dataset}")
    lines = [f"## {dataset}", "", *effects.effect_sections(results, dataset, out, tests)]
    for others, by_key in groups.items():
        lines += residual_sections(by_key, dataset, summaries, out, others if len(groups) > 1 else "", tests)
    lines += ["### Curves" + (" and accuracy against depth" if groups else ""), "",
              f"![curves](figures/{dataset}_curves.png)", ""]
    for others in groups:
        suffix = _suffix(others) if len(groups) > 1 else ""
        lines += [f"![accuracy against depth](figures/{dataset}_accuracy_vs_depth{suffix}.png)", ""]
    return lines + ["### How to decide", "", *_how_to_decide(done, dataset, tests, command)]


def write_study_report(results: list[ArmResult], out: StudyFiles, command: str, log_hint: str,
                       replace: bool = False, design: Design = Design()) -> str:
    """reports/NAME/study.md, its figures/*.png and what DVC shows of it
    (dvc_view.write_dvc_view); results are collecting.collect()'s; `design` is the
    preset's `report:` (decisions.Design); `log_hint` says where a failed run's
    log is (`{name}`: the run), as the engine that ran it says. A report is never
    replaced by one that lost results: with no arm done, or (unless `replace`)
    with an arm failed that has results there, nothing is written and the
    DataError says how to go on."""
    done = _keep_or_refuse(results, out, replace)
    summaries = {r.name: summarize_arm(r.runs) for r in done}
    datasets = list(dict.fromkeys(d for r in done for d in r.runs))
    all_tests, design = _decide(results, done, datasets, design)
    lines = [*_overview(results, done, summaries, datasets, command, log_hint, design),
             *_rule(design, all_tests), *_gain_section(done, all_tests)]
    for dataset in datasets:
        lines += _dataset_section(results, done, dataset, summaries, out, all_tests[dataset], command)
    text = "\n".join(lines)
    atomic_files.write_text(out.report, text)
    dvc_view.write_dvc_view(done, out)
    return text
