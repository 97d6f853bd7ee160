"""What each grid key of a study did, as the report shows it: per dataset, each
value's test accuracy over seeds and its difference from the key's reference
value (its first in the grid) within each combination of the other grid keys,
with a 95% CI, a test across seeds and its Holm-adjusted p in its family (tested
in study/deciding/comparisons.py); and one figure per key."""
from __future__ import annotations

import math
from collections import defaultdict

from tabulate import tabulate

from ablation.core import escaping
from ablation.core.layout import StudyFiles
from ablation.core.run_records import test_accuracy
from ablation.core.statistics import summarize
from ablation.report import figures
from ablation.study.deciding.comparisons import PAIRING_RULE, contrasts, grid_values, label
from ablation.study.deciding.decisions import Decisions
from ablation.study.grid import ArmResult


def numeric_order(values: list[str]) -> list[str]:
    """Grid values in numeric order when all are numbers (a figure's axis), else as given."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return values


def effect_sections(results: list[ArmResult], dataset: str, out: StudyFiles, decisions: Decisions) -> list[str]:
    """The report's "Effect of each grid key" part for `dataset`, and its figures."""
    done = [r for r in results if dataset in r.runs]
    grid = grid_values(results)
    by_cell = {(c.key, c.others, c.value): c for c in contrasts(done, dataset)}
    lines = ["### Effect of each grid key", "",
             "For each grid key, each value's test accuracy (mean ± std [95% CI], n = finite runs) and its "
             "difference from the key's first value in the grid (the reference), within each combination of the "
             "other grid keys, with its 95% CI and a two-sided test across seeds, its degrees of freedom, its p "
             f"and its Holm-adjusted p in its family (the decision rule above). {PAIRING_RULE}", ""]
    for key, values in grid.items():
        rows, series = [], defaultdict(dict)
        for result in done:
            here = result.spelled(grid)
            others = label({k: v for k, v in here.items() if k != key})
            accuracy = [test_accuracy(r) for r in result.runs[dataset].values()]
            summary = summarize(accuracy)
            series[others][here[key]] = ([a for a in accuracy if a is not None and math.isfinite(a)], summary.mean,
                                         summary.ci_low, summary.ci_high)
            cell = by_cell.get((key, others, here[key]))
            if cell is None:  # the reference itself, or an arm whose grid has no reference value (a subgrid's)
                what = "reference" if here[key] == values[0] else f"no arm with {key}={values[0]} to compare"
                rows.append([others, here[key], summary.format(), what, "", "", "", ""])
                continue
            tested = decisions[("test", cell.arms)]
            rows.append([others, here[key], summary.format(), cell.comparison.format_difference(),
                         tested.test_label(), "" if not tested.tested else cell.comparison.format_p(),
                         tested.format_holm(), tested.family])
        rows.sort(key=lambda row: (row[0], values.index(row[1])))
        kind = "effect_" + key.replace(".", "_")
        figures.plot_knob_effect(dict(series), numeric_order(values), out.figure(dataset, kind), key, dataset)
        lines += [f"#### {key}", "",
                  tabulate([[escaping.text(others), escaping.text(value), *rest] for others, value, *rest in rows],
                           headers=["other grid keys", key, "test accuracy",
                                    f"difference from {key}={escaping.text(values[0])} [95% CI]", "test", "p",
                                    "Holm p", "family"],
                           tablefmt="github", disable_numparse=True), "",
                  f"![{key}](figures/{dataset}_{kind}.png)", ""]
    return lines
