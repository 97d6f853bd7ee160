"""`ablate exps`: DVC's experiments one row each, narrow enough for a terminal: the
experiment's name, the knobs it changed from its baseline commit (by their last
name: `depth=56 residual=false`), and each dataset's test accuracy and final
training error. `dvc exp show` gives every param, metric and dependency hash instead
(148 columns for a 4-arm study), and no flag of it leaves only what differs."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

from ablation.study.grid import format_value

HEADLINE = {"test_accuracy": "acc", "train_error": "train err"}  # metrics.json key -> column
PARAMS, METRICS = "params.yaml", "reports/metrics.json"


def flat(values: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted key -> value (lists and scalars as they are)."""
    if not isinstance(values, dict) or not values:
        return {prefix: values} if prefix else {}
    found = {}
    for key, value in values.items():
        found.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def _data(rev: dict, kind: str, file: str) -> dict:
    return (((rev.get("data") or {}).get(kind) or {}).get(file) or {}).get("data") or {}


def changes(params: dict, baseline: dict) -> str:
    """The keys whose value differs from the baseline's, each by its last name where
    that is unambiguous among them."""
    changed = {key: value for key, value in params.items() if baseline.get(key) != value}
    short = [key.rsplit(".", 1)[-1] for key in changed]
    return " ".join(f"{name if short.count(name) == 1 else key}={format_value(value)}"
                    for (key, value), name in zip(changed.items(), short)) or "(baseline)"


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def rows(shown: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, one row per experiment) from `dvc exp show --json`."""
    experiments = []
    for baseline in shown:
        if baseline.get("rev") == "workspace":
            continue
        base = flat(_data(baseline, "params", PARAMS))
        for experiment in baseline.get("experiments") or []:
            rev = (experiment.get("revs") or [{}])[0]
            experiments.append((rev.get("name") or experiment.get("name") or str(rev.get("rev", ""))[:7],
                                changes(flat(_data(rev, "params", PARAMS)), base), _data(rev, "metrics", METRICS)))
    datasets = list(dict.fromkeys(name for *_, metrics in experiments for name in metrics))
    headers = ["experiment", "changed from\nits baseline"] + [f"{d}\n{column}" for d in datasets
                                                              for column in HEADLINE.values()]  # two lines: narrow
    return headers, [[name, changed, *(_number((metrics.get(d) or {}).get(key)) for d in datasets for key in HEADLINE)]
                     for name, changed, metrics in experiments]


def table(shown: list[dict]) -> str:
    headers, body = rows(shown)
    if not body:
        return "no experiments here yet: `ablate study` or `dvc exp run` makes them"
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)
