"""Load, override and validate `params.yaml`.

Every stage calls `load_params()` first, so a typo or an impossible value
stops with one message naming the key, the allowed values and the fix before
any data is read or any model is built.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from ablation.errors import UserError

PARAMS_FILE = Path("params.yaml")

VGG_MIN_SIDE = 32
# Depths per architecture, as models.RESNET_STAGES and models.VGG_BLOCKS build them.
# The choices here and in SCHEMA are written out, not imported, so that the stages
# that never build a model (fetch, split) do not depend on models.py in dvc.yaml;
# tests/test_params.py checks that they equal the implementing tables' keys.
ARCH_DEPTHS = {
    "resnet": (18, 34, 50, 101, 152),
    "vgg": (11, 13, 16, 19),
}


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e-4` is a string; DVC (YAML 1.2) reads a float.
    Resolve exponent floats as DVC does, so `-S train.learning_rate=1e-3` means 0.001."""


def _mapping_without_duplicates(loader, node, deep=False):
    """PyYAML keeps the last of two equal keys; a params file where a knob appears
    twice is a mistake, so it is refused."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Yaml12Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Yaml12Loader)


class ParamsError(UserError):
    """A params.yaml value is unknown, of the wrong type, or impossible."""


# --- checkers: each returns None when the value is fine, else what is allowed.
def _one_of(*choices):
    def check(value):
        return None if value in choices else "one of " + ", ".join(map(repr, choices))
    check.choices = choices  # for tests/test_params.py: the same names as the tables that implement them
    return check


def _number(low=None, high=None, integer=False, open_low=False):
    def check(value):
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return "an integer" if integer else "a number"
        if low is not None and (value < low or (open_low and value == low)):
            return f"a number {'>' if open_low else '>='} {low}"
        if high is not None and value > high:
            return f"a number <= {high}"
        return None
    return check


def _boolean(value):
    return None if isinstance(value, bool) else "true or false"


def _optional(check):
    return lambda value: None if value is None else check(value)


def _list_of(check, min_len=1):
    def checker(value):
        if not isinstance(value, list) or len(value) < min_len or any(check(v) for v in value):
            item = check(object()) or "values"
            return f"a list of at least {min_len} ({item})"
        return None
    return checker


def _fractions(value):
    if not isinstance(value, list) or any(_number(0, 1, open_low=True)(v) for v in value) \
            or value != sorted(value):
        return "an increasing list of fractions in (0, 1]"
    return None


def _per_dataset(check):
    """A mapping dataset name -> value; any dataset name is allowed."""
    def checker(value):
        if not isinstance(value, dict):
            return "a mapping of dataset name to value"
        bad = [k for k, v in value.items() if check(v)]
        return f"a mapping whose values are {check(object())} (bad: {bad})" if bad else None
    checker.inner = check
    return checker


TRAIN_SCHEMA: dict[str, Callable] = {
    "seeds": _list_of(_number(0, integer=True)),
    "epochs": _number(1, integer=True),
    "batch_size": _number(1, integer=True),
    "optimizer": _one_of("sgd", "adam"),
    "learning_rate": _number(0, open_low=True),
    "momentum": _number(0, 1),
    "schedule": _one_of("step", "cosine", "constant"),
    "step_boundaries": _fractions,
    "warmup_epochs": _number(0, integer=True),
    "mixed_precision": _one_of("float32", "mixed_float16", "mixed_bfloat16"),
    "jit_compile": _boolean,
    "steps_per_execution": _number(1, integer=True),
    "threads": _number(0, integer=True),
    "distribute": _one_of("auto", "none", "mirrored"),
}

SCHEMA: dict[str, Any] = {
    "datasets": _list_of(lambda v: None if isinstance(v, str) and v else "dataset names"),
    "data": {
        "source": _one_of("tfds", "folder"),
        "paths": _per_dataset(_optional(lambda v: None if isinstance(v, str) else "a path")),
        "image_size": _per_dataset(_number(8, integer=True)),
        "augment": _per_dataset(_one_of("none", "pad_crop_flip", "resized_crop_flip")),
        "limit": _optional(_number(1, integer=True)),
    },
    "split": {
        "test_fraction": _number(0, 1, open_low=True),
        "val_fraction": _number(0, 0.9),
        "seed": _number(0, integer=True),
    },
    "model": {
        "arch": _one_of("resnet", "resnet_cifar", "vgg"),
        "depth": _number(1, integer=True),
        "residual": _boolean,
        "shortcut": _one_of("A", "B", "C"),
        "fc_init": _one_of("linear_default", "he_normal"),
        "stem": _one_of("auto", "imagenet", "small"),
        "weight_decay": _number(0),
        "dense_units": _number(1, integer=True),
        "dropout": _number(0, 0.99),
    },
    "train": {**TRAIN_SCHEMA, "per_dataset": None},  # per_dataset checked below
    "study": {"grid": None},  # checked below
}


def _fail(key: str, value: Any, allowed: str, fix: str | None = None) -> None:
    fix = fix or f"set it in params.yaml or pass `-S {key}=<value>`"
    raise ParamsError(f"params: `{key}` is {value!r}; allowed: {allowed}. Fix: {fix}.")


def _validate_section(values: Any, schema: dict, prefix: str) -> None:
    if not isinstance(values, dict):
        _fail(prefix.rstrip("."), values, "a mapping with keys " + ", ".join(schema))
    for key in values:
        if key not in schema:
            _fail(prefix + key, values[key], "known keys " + ", ".join(schema),
                  "remove or rename the key (typo?)")
    for key, check in schema.items():
        if key not in values:
            raise ParamsError(f"params: `{prefix}{key}` is missing. Fix: add `{key}` under "
                              f"`{prefix.rstrip('.') or 'the top level'}` in params.yaml (see the shipped params.yaml).")
        if isinstance(check, dict):
            _validate_section(values[key], check, f"{prefix}{key}.")
        elif check is not None and (allowed := check(values[key])):
            _fail(prefix + key, values[key], allowed)


def validate_model(model: dict) -> None:
    """Checks that need several model keys together (depth per arch)."""
    _validate_section(model, SCHEMA["model"], "model.")
    arch, depth = model["arch"], model["depth"]
    if arch == "resnet_cifar":
        if depth < 8 or (depth - 2) % 6:
            _fail("model.depth", depth, "6n+2 for resnet_cifar: 8, 14, 20, 32, 44, 56, 110, 1202, ...",
                  "pick a depth of the form 6n+2")
    elif depth not in ARCH_DEPTHS[arch]:
        _fail("model.depth", depth, f"{', '.join(map(str, ARCH_DEPTHS[arch]))} for {arch}")
    if arch == "vgg" and model["residual"]:
        _fail("model.residual", True, "false for vgg (VGG has no shortcuts)",
              "pass `-S model.residual=false` with model.arch=vgg")


def validate(params: dict) -> dict:
    if not isinstance(params, dict):
        raise ParamsError("params: params.yaml must be a mapping of sections. Fix: restore it from git.")
    _validate_section(params, SCHEMA, "")
    validate_model(params["model"])
    if params["split"]["val_fraction"] and params["split"]["val_fraction"] >= 1:
        _fail("split.val_fraction", params["split"]["val_fraction"], "a fraction < 1")
    per_dataset = params["train"]["per_dataset"] or {}
    if not isinstance(per_dataset, dict):
        _fail("train.per_dataset", per_dataset, "a mapping dataset -> {train key: value}")
    for dataset, overrides in per_dataset.items():
        prefix = f"train.per_dataset.{dataset}."
        if not isinstance(overrides, dict):
            _fail(prefix.rstrip("."), overrides, "a mapping of train keys")
        for key, value in overrides.items():
            if key not in TRAIN_SCHEMA or key == "seeds":
                _fail(prefix + key, value, "train keys " + ", ".join(k for k in TRAIN_SCHEMA if k != "seeds"),
                      "remove or rename the key")
            if allowed := TRAIN_SCHEMA[key](value):
                _fail(prefix + key, value, allowed)
    grid = params["study"]["grid"]
    if not isinstance(grid, dict) or not grid:
        _fail("study.grid", grid, "a mapping of dotted param key -> list of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            _fail(f"study.grid.{key}", values, "a non-empty list of values")
        try:
            get(params, key)
        except KeyError:
            _fail(f"study.grid.{key}", values, "keys that exist in params.yaml, e.g. model.depth")
    for name in params["datasets"]:
        for section in ("image_size", "augment"):
            if name not in params["data"][section]:
                _fail(f"data.{section}.{name}", None, "a value for every dataset in `datasets`",
                      f"add `{name}:` under data.{section}")
        if params["model"]["arch"] == "vgg" and params["data"]["image_size"][name] < VGG_MIN_SIDE:
            _fail(f"data.image_size.{name}", params["data"]["image_size"][name],
                  f">= {VGG_MIN_SIDE} for vgg (five 2x2 poolings)")
    return params


def check_dataset(params: dict, dataset: str) -> None:
    """A stage's DATASET argument must be one of `datasets`."""
    if dataset not in params["datasets"]:
        raise ParamsError(f"params: dataset {dataset!r} is not in `datasets` ({', '.join(params['datasets'])}). "
                          f"Fix: add it to `datasets` in params.yaml, or pass one of those.")


def check_overrides_win(params: dict, overrides: list[str]) -> None:
    """A command-line `-S train.KEY=...` is never silently overridden by
    `train.per_dataset.<dataset>.KEY`: such a conflict stops with both keys named."""
    per_dataset = params["train"]["per_dataset"] or {}
    for item in overrides:
        key = item.partition("=")[0]
        if not key.startswith("train.") or key.count(".") != 1:
            continue
        name = key.split(".")[1]
        for dataset in params["datasets"]:
            if name in per_dataset.get(dataset, {}) and f"train.per_dataset.{dataset}.{name}" not in \
                    [o.partition("=")[0] for o in overrides]:
                raise ParamsError(
                    f"params: `-S {item}` would not apply to {dataset}: `train.per_dataset.{dataset}.{name}` "
                    f"({per_dataset[dataset][name]!r}) takes precedence for that dataset. Fix: also pass "
                    f"`-S train.per_dataset.{dataset}.{name}=<value>`, or remove that key from params.yaml.")


def get(params: dict, dotted: str) -> Any:
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def apply_overrides(params: dict, overrides: list[str]) -> dict:
    """Apply DVC-style `key.sub=value` overrides; values are parsed as YAML."""
    params = copy.deepcopy(params)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"params: override {item!r} is not `key=value`. Fix: write e.g. -S model.depth=50.")
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParamsError(f"params: cannot set {key!r}: {part!r} is not a section.")
        node[leaf] = parse_yaml(raw)
    return params


def load_params(path: str | Path = PARAMS_FILE, overrides: list[str] = ()) -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params: {path} not found. Fix: run from the project root, where params.yaml lives.")
    return parse_params(path.read_text(), str(path), overrides)


def parse_params(text: str, origin: str, overrides: list[str] = ()) -> dict:
    """The params in `text` (params.yaml's content, from a file or an experiment's
    commit, named by `origin` in errors) with `overrides`, validated."""
    try:
        params = parse_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParamsError(f"params: {origin} is not valid YAML ({problem}{where}). Fix: correct it "
                          "(each key once per section).") from None
    params = validate(apply_overrides(params, list(overrides)))
    check_overrides_win(params, list(overrides))
    return params


def train_params(params: dict, dataset: str) -> dict:
    """The `train` section with the dataset's `per_dataset` overrides applied."""
    merged = {k: v for k, v in params["train"].items() if k != "per_dataset"}
    merged.update((params["train"]["per_dataset"] or {}).get(dataset, {}))
    return merged
