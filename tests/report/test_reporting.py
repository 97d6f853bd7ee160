import csv
import json

import pytest
import yaml
from PIL import Image
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ablation.core import run_records, statistics
from ablation.core.errors import DataError
from ablation.core.layout import ArmReportFiles, StudyFiles
from ablation.core.params import ParamsError, load_params
from ablation.report import arm_report, claims, study_report
from ablation.study import raw_records
from ablation.study.deciding import claims as deciding_claims
from ablation.study.deciding import comparisons
from ablation.study.deciding.decisions import Decisions, Design
from ablation.study.engines.dvc_queue import LOG_HINT
from tests.conftest import ONE_MACHINE, ROOT, arm, run


def write_report(results, out, command="ablate study", **options):
    """The study report as DVC's queue's study writes it (its log hint)."""
    return study_report.write_study_report(results, out, command, LOG_HINT, **options)


def test_history_csvs_hold_what_dvc_plots_draws(tmp_path):
    history = {"loss": [2.0, 1.5], "val_loss": [2.2, 1.9], "accuracy": [0.3, 0.5], "val_accuracy": [0.25, 0.4],
               "learning_rate": [0.1, 0.01]}
    arm_report.write_history_csvs(history, ArmReportFiles(tmp_path), "cifar10")
    with open(tmp_path / "plots" / "loss" / "cifar10.csv") as handle:
        assert list(csv.DictReader(handle)) == [{"epoch": "1", "train_loss": "2", "val_loss": "2.2"},
                                                {"epoch": "2", "train_loss": "1.5", "val_loss": "1.9"}]
    with open(tmp_path / "plots" / "accuracy" / "cifar10.csv") as handle:
        assert [row["val_accuracy"] for row in csv.DictReader(handle)] == ["0.25", "0.4"]


def test_arm_numbers_agree_everywhere_diverged_runs_included():
    runs = {"cifar10": {0: run(0.8, 0.9, [True]), 1: run(0.1, 0.9, [False], diverged=True), 2: run(0.6, 0.7, [True])}}
    summary = run_records.summarize_arm(runs)
    metrics = run_records.metrics_json(summary)["cifar10"]
    assert metrics["test_accuracy"] == 0.7 and metrics["runs"] == 3 and metrics["diverged_runs"] == 1
    assert metrics["train_error"] == 0.2  # (0.1 + 0.3) / 2: the diverged run is not a training error of 1
    table = arm_report.arm_table(summary)
    assert "0.7000 ± 0.1414" in table and "(n=2; 1 diverged)" in table


def test_arm_markdown_renders_the_summary_without_the_pipeline():
    """The arm report's text is a pure function of its runs: the numbers are the
    summary's, the paper's row matches the arm, a diverged seed reads n/a."""
    runs = {"cifar10": {0: run(0.8, 0.9, [True]), 1: run(0.1, 0.9, [False], diverged=True), 2: run(0.6, 0.7, [True])}}
    params = load_params(ROOT / "params.yaml", ["model.arch=resnet_cifar", "model.depth=20", "model.shortcut=A",
                                                "train.seeds=[0, 1, 2]", "datasets=[cifar10]"])
    summary = run_records.summarize_arm(runs)
    text = arm_report.arm_markdown(params, runs, summary, {"cifar10": {"classes": ["cat"], "formats": {"PNG": 1}}})
    assert text.startswith("# Arm report: resnet_cifar20")
    assert "seeds [0, 1, 2]" in text and arm_report.arm_table(summary) in text
    assert "Trained in a precision not recorded on not recorded (3 runs)." in text  # what ran, said
    runs["cifar10"][0]["train"].update(mixed_precision="mixed_bfloat16", machine={
        "cpu": "AMD EPYC", "cpu_flags": ["avx512_bf16"], "gpus": [], "backend": "tensorflow", "threads": 2})
    said = arm_report.arm_markdown(params, runs, summary, {"cifar10": {"classes": ["cat"], "formats": {"PNG": 1}}})
    assert "Trained in mixed_bfloat16 on AMD EPYC (avx512_bf16), no GPU, tensorflow, 2 thread(s) (1 run); " in said
    assert "- cifar10: measured 0.7000 ± 0.1414" in text
    assert "paper (He 2015 Table 6): 91.25% accuracy (8.75% error, one run)" in text
    assert "| cat     |      0.8 | n/a      |      0.6 |" in text
    plain = arm_report.arm_markdown(params.with_overrides(["model.residual=false"]), runs, summary,
                                   {"cifar10": {"classes": ["cat"]}})
    assert plain.startswith("# Arm report: plain_cifar20") and "Against the paper" not in plain


def test_study_report_tests_the_gain_across_seeds_and_gives_verdicts(tmp_path):
    on = {"machine": ONE_MACHINE}  # every seed's runs in one block: each contrast paired by seed
    results = [arm("resnet20", True, 20, [run(0.90, 0.95, [True] * 20, **on), run(0.92, 0.96, [True] * 20, **on)]),
               arm("plain20", False, 20, [run(0.88, 0.93, [True] * 10 + [False] * 10, **on),
                                          run(0.87, 0.92, [True] * 20, **on)]),
               arm("resnet56", True, 56, [run(0.92, 0.97, [True] * 20, layers=9, **on),
                                          run(0.93, 0.98, [True] * 20, layers=9, **on)]),
               arm("plain56", False, 56, [run(0.80, 0.85, [False] * 20, layers=9, **on),
                                          run(0.81, 0.84, [False] * 20, layers=9, **on),
                                          run(0.1, 0.1, [False] * 20, diverged=True, layers=9, **on)]),
               arm("resnet110", True, 110, [])]
    out = StudyFiles("p", tmp_path)
    text = write_report(results, out, "ablate study --preset p.yaml")
    assert "`ablate study --preset p.yaml`" in text
    # gain at depth 56: 0.925 - 0.805 = +0.12; paired by seed; McNemar per seed on 20 discordant pairs
    gain_row = next(line for line in text.splitlines() if line.startswith("| resnet56 ") and "plain56" in line)
    assert "+0.1200 [" in gain_row and "s0: 1.9e-06, s1: 1.9e-06" in gain_row
    assert "0.8050 ± 0.0071" in text and "(n=2; 1 diverged)" in text  # plain56: diverged run counted, not averaged
    assert "failed: see `dvc queue logs resnet110`" in text
    # Primary family (Holm over 4): (a) interaction +0.10 at both seeds, (b) at 56 +0.12 at both: beyond seed
    # noise; (b) at 20 (+0.02, +0.05) and (c) (+0.02, +0.01) within it.
    assert ("**(a) degradation: going from depth 20 to 56 raises plain nets' training error more than residual "
            "nets': yes.** depth x residual interaction on final training error +0.1000 [") in text
    assert "**(b) residual-56 has a lower test error than plain-56: yes.**" in text
    assert "**(b) residual-20 has a lower test error than plain-20: not shown.**" in text
    assert "**(c) residual-56 has a lower test error than residual-20: not shown.**" in text
    claims = [line for line in text.splitlines() if line.startswith("- **(")]
    assert len(claims) == 4 and "(b) residual-20 has" in claims[2]  # (b) at each depth, deepest first
    for claim in claims:  # the curves' evidence comes with exactly the claims not shown
        assert ("Why, from the curves" in claim) == (": yes.**" not in claim), claim
    for figure in ("degradation", "layer_responses", "accuracy_vs_depth", "curves"):
        with Image.open(tmp_path / "p" / "figures" / f"cifar10_{figure}.png") as image:
            assert image.width > 500, figure
        assert f"(figures/cifar10_{figure}.png)" in text
    # What DVC shows of the study: per-arm numbers, and each arm's mean curve per epoch.
    metrics = json.loads(out.metrics.read_text())
    assert set(metrics) == {"resnet20", "plain20", "resnet56", "plain56"}  # resnet110 failed: no numbers
    assert metrics["plain56"]["cifar10"]["test_accuracy"] == pytest.approx(0.805)
    assert metrics["plain56"]["cifar10"]["diverged_runs"] == 1
    with open(out.plot_csv("training_error", "cifar10")) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"] and float(rows[1]["resnet20"]) == pytest.approx(1 - 0.955)
    view = yaml.safe_load(out.dvc_yaml.read_text())
    chart = view["plots"][0]["plots/training_error/cifar10.csv"]
    assert view["metrics"] == ["metrics.json"] and chart["y"] == list(metrics)
    assert chart["title"] == "p, cifar10: training error" and chart["y_label"] == "training error"
    assert (ROOT / ".dvc" / "plots" / f"{chart['template']}.json").exists()  # one colour per arm


def test_a_study_report_is_never_replaced_by_one_that_lost_results(tmp_path):
    done = [arm("resnet20", True, 20, [run(0.90, 0.95, [True])]), arm("plain20", False, 20, [run(0.88, 0.93, [True])])]
    out = StudyFiles("s", tmp_path)
    first = write_report(done, out)
    assert raw_records.arms_with_results(out) == {"resnet20", "plain20"}
    lost = [done[0], arm("plain20", False, 20, [])]  # plain20's experiment is not here any more
    with pytest.raises(DataError, match=r"arm\(s\) \['plain20'\].*--replace-report"):
        write_report(lost, out)
    with pytest.raises(DataError, match="no arm of the study left results"):
        write_report([arm("resnet20", True, 20, [])], out)
    assert out.report.read_text() == first
    assert "failed: see" in write_report(lost, out, replace=True)
    other = write_report([arm("resnet32", True, 32, [run(0.9, 0.9, [True])])], out)  # a new grid
    assert out.report.read_text() == other


def test_verdicts_say_no_when_the_numbers_say_no(tmp_path):
    on = {"machine": ONE_MACHINE}
    results = [arm("resnet20", True, 20, [run(0.90, 0.95, [True], **on), run(0.91, 0.96, [True], **on)]),
               arm("plain20", False, 20, [run(0.88, 0.80, [True], **on), run(0.87, 0.81, [True], **on)]),
               arm("resnet56", True, 56, [run(0.70, 0.75, [True], **on), run(0.71, 0.74, [True], **on)]),
               arm("plain56", False, 56, [run(0.80, 0.90, [True], **on), run(0.81, 0.91, [True], **on)])]
    text = write_report(results, StudyFiles("s", tmp_path))
    assert "raises plain nets' training error more than residual nets': no.**" in text  # interaction -0.30, -0.32
    assert "(b) residual-56 has a lower test error than plain-56: no.**" in text
    assert "(c) residual-56 has a lower test error than residual-20: no.**" in text


def test_a_difference_within_seed_noise_is_not_shown(tmp_path):
    results = [arm("resnet20", True, 20, [run(0.72, 0.72, [True]), run(0.71, 0.71, [True])]),
               arm("plain20", False, 20, [run(0.70, 0.68, [True]), run(0.66, 0.68, [True])]),
               arm("resnet56", True, 56, [run(0.60, 0.65, [True]), run(0.67, 0.60, [True])]),
               arm("plain56", False, 56, [run(0.55, 0.70, [True]), run(0.70, 0.62, [True])])]
    text = write_report(results, StudyFiles("s", tmp_path))
    assert "raises plain nets' training error more than residual nets': not shown.**" in text
    assert "(b) residual-56 has a lower test error than plain-56: not shown.**" in text
    assert "(c) residual-56 has a lower test error than residual-20: not shown.**" in text
    claim_b = next(line for line in text.splitlines() if line.startswith("- **(b) residual-56"))
    # the curves' evidence: mean training errors 0.375 and 0.34 after epoch 2, both still falling, and its test
    assert ("Why, from the curves: plain-56 fits its training images better than residual-56 (0.340 against 0.375; "
            "Welch (df 1.0) p = 0.594, Holm p = 1 (5 secondary contrasts): within seed noise)") in claim_b
    assert "were still learning when training stopped" in claim_b
    assert "optimizes better" not in text and "never left chance" not in text  # one class: no chance level
    how = text[text.index("### How to decide"):]
    assert "--until-decided --max-seeds" in how and "| (b) test error, residual-56 minus plain-56 " in how


def test_a_net_that_never_left_chance_is_named_in_the_claims_shown_and_not_shown(tmp_path):
    """Two classes: plain-56 stays at 0.51 training accuracy (chance 0.5) in all three seeds."""
    def two_class(test_accuracy, train_accuracy, first_epoch):
        result = run(test_accuracy, train_accuracy, [True])
        result["eval"]["per_class_accuracy"] = {"cat": test_accuracy, "dog": test_accuracy}
        result["history"]["accuracy"][0] = first_epoch
        return result
    results = [arm("resnet20", True, 20, [two_class(0.68, 0.69, 0.57), two_class(0.69, 0.69, 0.57),
                                          two_class(0.69, 0.70, 0.57)]),
               arm("plain20", False, 20, [two_class(0.56, 0.57, 0.52), two_class(0.60, 0.58, 0.52),
                                          two_class(0.58, 0.575, 0.52)]),
               arm("resnet56", True, 56, [two_class(0.66, 0.67, 0.53), two_class(0.54, 0.67, 0.53),
                                          two_class(0.60, 0.668, 0.53)]),
               arm("plain56", False, 56, [two_class(0.52, 0.51, 0.505), two_class(0.53, 0.512, 0.505),
                                          two_class(0.52, 0.511, 0.505)])]
    text = write_report(results, StudyFiles("s", tmp_path))
    claims = {line[4:7]: line for line in text.splitlines() if line.startswith("- **(")}
    assert ": yes.** " in claims["(a)"] and "Note, from the curves: plain-56's training error by epoch" in claims["(a)"]
    assert "it never left chance (guessing's error is 0.500)" in claims["(a)"]
    claim_b56 = next(line for line in text.splitlines() if line.startswith("- **(b) residual-56"))
    assert ": not shown.** " in claim_b56  # residual-56's test accuracy spreads 0.12 over its seeds
    assert "plain-56 never left chance: the optimizer did not train it" in claim_b56


def test_a_grid_over_any_key_reports_each_keys_effect_paired_where_seeds_start_alike(tmp_path):
    """Grid model.shortcut=A,B x model.residual=true,false at one depth: option A's
    twins start from the same weights per seed (paired test), B's residual arm has
    projections (other weights: Welch); four contrasts, Holm-adjusted."""
    def runs(accuracies, weights):
        return [run(a, a, [True], start=(f"{weights}-s{seed}", f"order-s{seed}")) for seed, a in enumerate(accuracies)]
    residual_a, plain_a = [0.90, 0.85, 0.80], [0.88, 0.84, 0.77]
    results = [arm("resnet-cifar20-shortcutA", True, 20, runs(residual_a, "w"), ("model.shortcut=A",)),
               arm("plain-cifar20-shortcutA", False, 20, runs(plain_a, "w"), ("model.shortcut=A",)),
               arm("resnet-cifar20-shortcutB", True, 20, runs([0.91, 0.86, 0.83], "wB"), ("model.shortcut=B",)),
               arm("plain-cifar20-shortcutB", False, 20, runs([0.87, 0.83, 0.79], "w"), ("model.shortcut=B",))]
    out = StudyFiles("knobs", tmp_path)
    text = write_report(results, out)
    assert text.startswith("# Study: what `model.shortcut` and `model.residual` change")
    assert raw_records.arms_with_results(out) == {r.name for r in results}
    assert "The paper's claims" not in text  # they compare depths
    assert "### Degradation (the paper's Fig. 6) (model.shortcut=B)" in text  # one per group of twins
    assert (tmp_path / "knobs" / "figures" / "cifar10_layer_responses_model_shortcut_A.png").exists()
    lines = text.splitlines()

    def row(key, others, value):  # the cells of a row of key's table
        start = lines.index(f"#### {key}")
        cells = ([c.strip() for c in line.split("|")[1:-1]] for line in lines[start:] if line.startswith("| "))
        return next(c for c in cells if c[:2] == [others, value])
    # residual=false against true within shortcut A: same start per seed, so paired.
    paired_row = row("model.residual", "model.shortcut=A", "false")
    expected = stats.ttest_rel(plain_a, residual_a)
    differences = [p - r for p, r in zip(plain_a, residual_a)]
    assert paired_row[3].startswith(f"{sum(differences) / 3:+.4f} [") and paired_row[4] == "paired t, df 2.0"
    assert paired_row[5] == f"{expected.pvalue:.3g}"
    # Within shortcut B the residual arm's weights differ (projections): Welch.
    assert row("model.residual", "model.shortcut=B", "false")[4].startswith("Welch, df ")
    assert row("model.shortcut", "model.residual=true", "B")[4].startswith("Welch, df ")
    # B against A among the plain arms: same start, paired.
    assert row("model.shortcut", "model.residual=false", "B")[4].startswith("paired t")
    assert row("model.shortcut", "model.residual=true", "A")[3] == "reference"
    found = comparisons.contrasts(results, "cifar10")
    # No claims here, so every grid contrast is primary: one Holm family of 4.
    assert len(found) == 4 and "(cifar10: 4 primary, 0 secondary)" in text and paired_row[7] == "primary"
    adjusted = statistics.holm([c.comparison.p_value for c in found])
    paired = [(c.key, c.others) for c in found].index(("model.residual", "model.shortcut=A"))
    assert paired_row[6] == f"{adjusted[paired]:.3g}"
    for key in ("model_shortcut", "model_residual"):
        with Image.open(tmp_path / "knobs" / "figures" / f"cifar10_effect_{key}.png") as image:
            assert image.width > 400
        assert f"(figures/cifar10_effect_{key}.png)" in text


def test_runs_recorded_without_start_keys_are_compared_by_welch():
    old = {0: run(0.9, 0.9, [True]), 1: run(0.8, 0.8, [True])}
    new = {0: run(0.85, 0.85, [True]), 1: run(0.7, 0.7, [True])}
    comparison, test = comparisons.compare(new, old)
    assert test == comparisons.WELCH
    statistic = stats.ttest_ind([0.85, 0.7], [0.9, 0.8], equal_var=False).statistic
    assert comparison.p_value == pytest.approx(2 * stats.t.sf(abs(statistic), 1))  # Welch's, at Hsu's df


def test_the_claims_test_each_contrast_as_the_gain_table_does():
    """Option-A twins start alike per seed: claim (b) is the gain table's paired test
    (p 0.026 here, where Welch's p would be 0.069), (a) is Welch's test of the per-seed
    twin differences at the two depths, and (c), which compares depths, is Welch's."""
    def runs(accuracies, weights):
        return [run(a, a - 0.02, [True], start=(f"{weights}-s{seed}", f"order-s{seed}"))
                for seed, a in enumerate(accuracies)]
    results = [arm("resnet56", True, 56, runs([0.60, 0.50], "w56")),
               arm("plain56", False, 56, runs([0.35, 0.26], "w56")),
               arm("resnet20", True, 20, runs([0.73, 0.71], "w20")),
               arm("plain20", False, 20, runs([0.68, 0.67], "w20"))]
    by_key = {depth: {"residual" if r.params.model.residual else "plain": r for r in results
                      if r.params.model.depth == depth} for depth in (20, 56)}
    tests = Decisions(Design(), True, ("model.residual", "model.depth"))
    deciding_claims.add_claims(by_key, "cifar10", tests)
    tests.adjust()
    lines = {line.split(":")[0][4:]: line for line in claims.lines(by_key, "cifar10", tests)}
    gain = stats.ttest_rel([0.60, 0.50], [0.35, 0.26])
    claim_b56 = lines["(b) residual-56 has a lower test error than plain-56"]
    assert f"paired t (df 1.0) p = {gain.pvalue:.3g}, Holm p = " in claim_b56 and "difference -0.2450 [" in claim_b56
    # Welch's statistic at Hsu's degrees of freedom: the smaller side's n - 1
    welch_c = 2 * stats.t.sf(abs(stats.ttest_ind([0.40, 0.50], [0.27, 0.29], equal_var=False).statistic), 1)
    assert f"p = {welch_c:.3g}, Holm p" in lines["(c) residual-56 has a lower test error than residual-20"]
    # (a): the per-seed twin differences in training error (plain minus residual) at 56 against those at 20
    twins = 2 * stats.t.sf(abs(stats.ttest_ind([0.25, 0.24], [0.05, 0.04], equal_var=False).statistic), 1)
    assert ("interaction on final training error +0.2000 [" in lines["(a) degradation"]
            and f"Welch on twin differences (df 1.0) p = {twins:.3g}" in lines["(a) degradation"])
    assert "(4 primary contrasts)" in claim_b56
    assert [t.holm_p for t in tests.family("primary")] == pytest.approx(
        list(multipletests([t.comparison.p_value for t in tests.family("primary")], method="holm")[1]))


def test_one_seed_prints_no_interval_test_or_verdict_and_a_smoke_test_says_so(tmp_path):
    results = [arm("resnet20", True, 20, [run(0.30, 0.35, [True])]),
               arm("plain20", False, 20, [run(0.25, 0.3, [True])]),
               arm("resnet32", True, 32, [run(0.28, 0.33, [True])]),
               arm("plain32", False, 32, [run(0.2, 0.3, [True])])]
    text = write_report(results, StudyFiles("quick", tmp_path), design=Design(smoke_test=True))
    assert text.splitlines()[2].startswith("**A smoke test of the machinery")
    gain_row = next(line for line in text.splitlines() if line.startswith("| resnet32 ") and "plain32" in line)
    assert "+0.0800 " in gain_row and "[" not in gain_row and "one seed: no test" in gain_row
    assert "| Welch" not in text and "paired t," not in text and "beyond seed noise:" not in text
    claims = [line for line in text.splitlines() if line.startswith("- **(")]
    assert len(claims) == 4 and all(": cannot tell.**" in claim for claim in claims)
    assert "With 1 seed per arm no contrast can be tested" in text


def test_a_preset_report_section_is_checked():
    design = Design.parse({"primary": ["claims", "model.depth"], "min_effect": 0.01, "max_seeds": 8}, "p.yaml")
    assert design.primary == ("claims", "model.depth") and design.max_seeds == 8
    for bad, key in (({"primary": "claims"}, "report.primary"), ({"min_effect": 2}, "report.min_effect"),
                     ({"max_seeds": 1}, "report.max_seeds"), ({"colour": 1}, "`report` must be a mapping")):
        with pytest.raises(ParamsError, match=key):
            Design.parse(bad, "p.yaml")


def test_runs_on_two_machine_kinds_are_named_per_arm_and_record_text_cannot_become_markup(tmp_path):
    def on(machine_record, accuracies):
        runs = [run(a, a, [True]) for a in accuracies]
        for r in runs:
            r["train"]["machine"] = machine_record
        return runs
    xeon = {"cpu": "Intel Xeon", "cpu_flags": ["amx_bf16"], "gpus": [], "backend": "tensorflow", "threads": 1}
    hostile = {**xeon, "cpu": "# Owned [click](javascript:alert(1)) <b>x</b>\n`code`"}
    results = [arm("resnet20", True, 20, on(xeon, [0.7, 0.72])), arm("plain20", False, 20, on(hostile, [0.6, 0.62]))]
    text = write_report(results, StudyFiles("mixed", tmp_path))
    ran_on = next(line for line in text.splitlines() if line.startswith("Ran on: "))
    assert "more than one machine kind" in ran_on and "resnet20 on `Intel Xeon" in ran_on
    # one code span (fenced past its backticks), on one line: the newline shown as its escape
    assert "plain20 on ``# Owned [click](javascript:alert(1)) <b>x</b>\\n`code`" in ran_on
    assert ran_on.count("`") % 2 == 0 and "\n#" not in text.split("Ran on: ")[1].split("\n\n")[0]


def test_a_study_run_in_rounds_takes_its_primary_verdicts_from_the_sequential_design(tmp_path):
    """The same numbers that give (a) and (b) at depth 56 a fixed-design yes are, at the
    first of the looks 2, 4 and 6 that --until-decided planned, short of the early
    bound the design spends alpha by: not decided yet, so not shown yet, and the report
    says the study is at an interim look."""
    results = [arm("resnet20", True, 20, [run(0.90, 0.95, [True]), run(0.91, 0.96, [True])]),
               arm("plain20", False, 20, [run(0.88, 0.93, [True]), run(0.87, 0.92, [True])]),
               arm("resnet56", True, 56, [run(0.92, 0.97, [True]), run(0.9228, 0.98, [True])]),
               arm("plain56", False, 56, [run(0.80, 0.85, [True]), run(0.8028, 0.84, [True])])]
    fixed = write_report(results, StudyFiles("fixed", tmp_path))
    assert "**(b) residual-56 has a lower test error than plain-56: yes.**" in fixed
    rounds = write_report(results, StudyFiles("rounds", tmp_path), design=Design(looks=(2, 4, 6)))
    claim = next(line for line in rounds.splitlines() if line.startswith("- **(b) residual-56"))
    assert ": not shown yet.**" in claim
    assert "group-sequential: not decided yet at 2 of 6 seeds per arm: not yet beyond seed noise" in claim
    assert "looks at [2, 4, 6] seeds per arm" in rounds
    assert "the design's look at 2 seeds per arm, not its last" in rounds


def test_a_study_folder_records_the_looks_it_ran_by(tmp_path):
    out = StudyFiles("rounds", tmp_path)
    out.dir.mkdir()
    raw_records.record_owner(out, {"set": [], "arms": {}}, (2, 3, 4))
    assert raw_records.recorded_looks(out) == (2, 3, 4)
    raw_records.record_owner(out, {"set": [], "arms": {}})
    assert raw_records.recorded_looks(out) is None
    out.owner.write_text('{"definition": {}, "looks": [3, 2]}')
    with pytest.raises(ParamsError, match="not an increasing list of seed counts"):
        raw_records.recorded_looks(out)


def test_the_terminal_headline_names_each_claim_s_dataset_and_says_why_no_interval():
    from ablation.core.statistics import Comparison
    from ablation.report.claims import _ci_said
    from ablation.report.study_report import headline
    text = "# Study\n\n## Decision rule\n\ntext\n\n## cifar10\n\n- **(b) x: yes.** +0.1 [+0.0, +0.2]\n\n" \
           "## cats_vs_dogs\n\n- **(b) x: not shown.** +0.1\n"
    assert headline(text) == ["# Study", "- cifar10: **(b) x: yes.** +0.1 [+0.0, +0.2]",
                              "- cats_vs_dogs: **(b) x: not shown.** +0.1"]
    assert _ci_said(Comparison(0.1, 0.0, 0.2, 0.04, 3.0)) == ", 95% CI"
    assert _ci_said(Comparison(0.1, None, None, None, None)) == "; no CI: one seed on a side"
