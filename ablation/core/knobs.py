"""A knob's declaration (`Knob`, attached to a settings field by `knob`) and the
checkers of its values: each takes a value and returns None when it is fine, else
what is allowed (sections.py turns that into the error). Allowed names come from
the tables that implement them, looked up by module name when a value is checked
(`table`)."""
from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

# The stages of dvc.yaml, in pipeline order: what a knob's `stages` name.
STAGES = ("fetch", "split", "train", "evaluate", "report")
ALWAYS = "always"  # a Knob's `before` for a knob that runs have had from the first


def table(module: str, name: str) -> dict:
    """The lookup table `name` of `ablation.<module>`, imported by name when a value
    is checked. Every stage validates every knob, but fetch and split must not have
    nets/models.py or training/recipe.py as DVC deps (editing a model would re-fetch the data):
    what they write never depends on these tables, only whether they start. The
    modules it may load are `TABLE_MODULES` (tests/test_packages.py holds them to
    the package plan)."""
    if module not in TABLE_MODULES:
        raise ValueError(f"ablation.{module} is not one of the knob tables' modules {TABLE_MODULES}")
    return getattr(importlib.import_module(f"ablation.{module}"), name)


# The modules whose tables name a knob's choices: core may look them up by name (not
# import them), so their edits are not deps of fetch and split.
TABLE_MODULES = ("core.precision", "data.fetch", "nets.models", "nets.units", "training.fit", "training.inputs",
                 "training.recipe")


def one_of(*choices):
    """Choices that no table of ours implements (Keras' dtype policy names)."""
    return lambda value: None if value in choices else "one of " + ", ".join(map(repr, choices))


def key_of(module: str, name: str):
    """A key of the implementing table `ablation.<module>.<name>`."""
    def check(value):
        return one_of(*table(module, name))(value)
    check.table = (module, name)  # for tests/core/test_params.py
    return check


def either(first, second):
    """A value `first` or `second` allows (a table's key, or a builder of the user's)."""
    def check(value):
        if first(value) is None or second(value) is None:
            return None
        return f"{first(value)}, or {second(value)}"
    check.table = getattr(first, "table", None)  # for tests/core/test_params.py
    return check


# A user's own network (nets/builders.py): `package.module:function`.
BUILDER_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", re.ASCII)


def builder_reference(value):
    return None if isinstance(value, str) and BUILDER_PATTERN.fullmatch(value) else \
        "`package.module:function` (a builder of your own network)"


def number(low=None, high=None, integer=False, open_low=False):
    def check(value):
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            return "an integer" if integer else "a finite number"
        if low is not None and (value < low or (open_low and value == low)):
            return f"a number {'>' if open_low else '>='} {low}"
        if high is not None and value > high:
            return f"a number <= {high}"
        return None
    return check


def boolean(value):
    return None if isinstance(value, bool) else "true or false"


def optional(check):
    return lambda value: None if value is None else check(value)


def list_of(check, min_len=1, distinct=False):
    """A list of at least min_len values that each pass `check`; with `distinct`, none twice
    (a seed or dataset named twice would run, and count, the same runs twice)."""
    def checker(value):
        if not isinstance(value, list) or len(value) < min_len or any(check(v) for v in value) \
                or (distinct and len({repr(v) for v in value}) < len(value)):
            item = check(object()) or "values"
            return f"a list of at least {min_len} ({item}{', each once' if distinct else ''})"
        return None
    return checker


def fractions(value):
    if not isinstance(value, list) or any(number(0, 1, open_low=True)(v) for v in value) \
            or value != sorted(value):
        return "an increasing list of fractions in (0, 1]"
    return None


def per_dataset(check):
    """A mapping dataset name -> value; any dataset name is allowed."""
    def checker(value):
        if not isinstance(value, dict):
            return "a mapping of dataset name to value"
        bad = {k: problem for k, v in value.items() if (problem := check(v))}
        return f"a mapping whose values are {next(iter(bad.values()))} (bad: {list(bad)})" if bad else None
    checker.inner = check
    return checker


# A name that becomes a directory or file name (a dataset, an experiment): it can
# never be absolute, hold a separator or `..`, or start with a dot or dash.
NAME_RULE = "letters, digits, `_` and `-`, starting with a letter or digit, at most 64 characters"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def is_plain_name(value) -> bool:
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def dataset_names(value):
    return None if is_plain_name(value) else f"dataset names of {NAME_RULE} (e.g. cats_vs_dogs)"


def path_value(value):
    return None if isinstance(value, str) else "a path"


def mapping(value):
    return None if isinstance(value, dict) else "a mapping"


def grid_shape(value):
    if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(g, dict) for g in value)):
        return None
    return "a mapping of dotted param key -> list of values, or a list of such mappings"


def subgrids(grid) -> list[dict]:
    """study.grid as a list of mappings: the grid is one mapping (its product), or a
    list of them (the union of their products: depth 110 with basic blocks and
    164 with bottleneck ones, say, without the two other pairs)."""
    return list(grid) if isinstance(grid, (list, tuple)) else [grid]


@dataclass(frozen=True)
class Knob:
    """One params.yaml key, declared once: everything else about it (validation, the
    value old runs load with, each stage's `params:` in dvc.yaml, the run fingerprint,
    params.yaml itself) is derived from this (core/declarations.py)."""
    check: Callable[[Any], str | None]  # None for a good value, else what is allowed
    default: Any  # its value in the shipped params.yaml
    meaning: str  # one line: params.yaml's comment beside the key
    stages: tuple[str, ...]  # the dvc.yaml stages whose outputs depend on it (of STAGES)
    before: Any = ALWAYS  # the value runs had before the knob existed (what an old params file means)
    tag: str | None = None  # names the key in an arm's name (`lr0.01`): None = the key, `_` as `-`; "" = none
    note: str = ""  # why the default is what it is: comment lines above the key in params.yaml
    keyed: bool = False  # a mapping whose keys are knobs of their own (a builder's options): names say the key

    def __post_init__(self):
        if unknown := set(self.stages) - set(STAGES):
            raise ValueError(f"unknown stages {sorted(unknown)}; stages are {STAGES}")


def knob(check: Callable[[Any], str | None], default: Any, meaning: str, stages: tuple[str, ...], **more):
    """A settings field declared as a Knob (see there for `more`)."""
    return field(metadata={"knob": Knob(check, default, meaning, tuple(stages), **more)})
