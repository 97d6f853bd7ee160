"""params.yaml as typed, frozen settings, validated once, when they load.

Each section of params.yaml is a frozen dataclass (sections.py). A stage calls
`load_params()` first, so a typo or an impossible value stops with one message
naming the key, the allowed values and the fix before any data is read, and
`Params.for_dataset(name)` gives one run's resolved settings (`data.*.<name>`
and `train.per_dataset.<name>` applied) as a `RunSettings`.

Allowed names come from the tables that implement them (`models.ARCHITECTURES`,
`recipe.OPTIMIZERS`, `inputs.AUGMENTATIONS`, ...), looked up by module name when a
value is checked; see `table`.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablation.core.errors import ParamsError
from ablation.core.knobs import subgrids, table
from ablation.core.sections import (
    DATASETS,
    SECTIONS,
    DataParams,
    ModelParams,
    SplitParams,
    StudyParams,
    TrainParams,
    added,
    checked_fields,
    declared,
    fail,
    unknown_key,
)
from ablation.core.yaml_text import parse_override_value, parse_yaml_text, read_yaml_file

PARAMS_FILE = Path("params.yaml")


def _knob(key: str):
    """A RunSettings field that holds the knob `key` (resolved for its dataset)."""
    return field(metadata={"key": key})


@dataclass(frozen=True)
class RunSettings:
    """One dataset's resolved settings: what the fetch, split, train and evaluate
    stages of that dataset use."""
    dataset: str
    source: str = _knob("data.source")
    path: str | None = _knob("data.paths")
    image_size: int = _knob("data.image_size")
    augment: str = _knob("data.augment")
    limit: int | None = _knob("data.limit")
    max_file_mb: float = _knob("data.max_file_mb")
    max_image_megapixels: float = _knob("data.max_image_megapixels")
    split: SplitParams = _knob("split")
    model: ModelParams = _knob("model")
    train: TrainParams = _knob("train")
    # the train keys that train.per_dataset.<dataset> sets: key -> (train.KEY, its value here)
    per_dataset_train: dict[str, tuple[Any, Any]] = _knob("train.per_dataset")

    def value(self, key: str) -> Any:
        """The knob `key` (`data.image_size`, `model.depth`) as this run resolves it."""
        holders = {item.metadata["key"]: item.name for item in dataclasses.fields(self) if item.metadata}
        if key in holders:
            return getattr(self, holders[key])
        section, name = key.split(".")
        return getattr(getattr(self, holders[section]), name)


@dataclass(frozen=True)
class Params:
    datasets: tuple[str, ...]
    data: DataParams
    split: SplitParams
    model: ModelParams
    train: TrainParams
    study: StudyParams
    # params.yaml's mapping as loaded: a study applies each arm's `-S` overrides to it
    raw: dict = field(repr=False, compare=False)

    SECTIONS = ("datasets", *SECTIONS)

    def for_dataset(self, name: str) -> RunSettings:
        """A stage's DATASET argument resolved: it must be one of `datasets`."""
        if name not in self.datasets:
            raise ParamsError(f"params: dataset {name!r} is not in `datasets` ({', '.join(self.datasets)}). "
                              f"Fix: add it to `datasets` in params.yaml, or pass one of those.")
        return RunSettings(dataset=name, source=self.data.source, path=self.data.paths.get(name),
                           image_size=self.data.image_size[name], augment=self.data.augment[name],
                           limit=self.data.limit, max_file_mb=self.data.max_file_mb,
                           max_image_megapixels=self.data.max_image_megapixels, split=self.split, model=self.model,
                           train=self.train.for_dataset(name),
                           per_dataset_train={key: (getattr(self.train, key), value)
                                              for key, value in self.train.per_dataset.get(name, {}).items()})

    def with_overrides(self, overrides: list[str]) -> Params:
        """These params with DVC-style `key=value` overrides, validated."""
        return from_dict(self.raw, overrides)


def get(raw: dict, dotted: str) -> Any:
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def name_tag(dotted: str) -> str:
    """How the key `dotted` is named in an arm's name: the tag of the deepest
    section field it goes through (`train.per_dataset.cifar10.learning_rate`:
    learning_rate's `lr`; `data.image_size.cifar10`: `image-size`)."""
    section, *parts = dotted.split(".")
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])} if section in SECTIONS else {}
    for index in reversed(range(len(parts))):
        part = parts[index]
        if part in fields:
            if declared(fields[part]).keyed and index + 1 < len(parts):  # `model.options.layer_scale`
                return parts[index + 1].replace("_", "-")
            tag = declared(fields[part]).tag
            return part.replace("_", "-") if tag is None else tag
    return dotted.split(".")[-1].replace("_", "-")


def _check_grid(raw: dict) -> None:
    for grid in subgrids(raw["study"]["grid"]):
        _check_subgrid(raw, grid, alone=isinstance(raw["study"]["grid"], dict))


def _check_subgrid(raw: dict, grid: dict, alone: bool) -> None:
    if not grid and not alone:  # alone, {} is one arm: params.yaml's (a new project's default, `ablate init`)
        fail("study.grid", grid, "a list of non-empty mappings of dotted param key -> list of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            fail(f"study.grid.{key}", values, "a non-empty list of values")
        try:
            get(raw, key)
        except KeyError:
            if not _under_keyed_knob(key):  # a builder's option is checked by the builder, when params load
                fail(f"study.grid.{key}", values, "keys that exist in params.yaml, e.g. model.depth")


def _under_keyed_knob(dotted: str) -> bool:
    """`model.options.NAME`: a key inside a knob whose keys are knobs of their own."""
    section, *parts = dotted.split(".")
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])} if section in SECTIONS else {}
    return len(parts) == 2 and parts[0] in fields and declared(fields[parts[0]]).keyed


def _check_overrides_win(train: TrainParams, datasets: tuple[str, ...], overrides: list[str]) -> None:
    """A command-line `-S train.KEY=...` is never silently overridden by
    `train.per_dataset.<dataset>.KEY`: such a conflict stops with both keys named."""
    keys = [o.partition("=")[0] for o in overrides]
    for item, key in zip(overrides, keys):
        if not key.startswith("train.") or key.count(".") != 1:
            continue
        name = key.split(".")[1]
        for dataset in datasets:
            specific = train.per_dataset.get(dataset, {})
            if name in specific and f"train.per_dataset.{dataset}.{name}" not in keys:
                raise ParamsError(
                    f"params: `-S {item}` would not apply to {dataset}: `train.per_dataset.{dataset}.{name}` "
                    f"({specific[name]!r}) takes precedence for that dataset. Fix: also pass "
                    f"`-S train.per_dataset.{dataset}.{name}=<value>`, or remove that key from params.yaml.")


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply DVC-style `key.sub=value` overrides, each value read as DVC's -S reads it."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"params: override {item!r} is not `key=value`. Fix: write e.g. -S model.depth=50.")
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParamsError(f"params: cannot set {key!r}: {part!r} is {str(node)[:40]!r}, not a section. Fix: "
                                  f"give {part!r} its keys as a mapping, or drop the value that replaced it.")
        shown = item if len(item) <= 80 else item[:80] + "..."  # a line, whatever was typed
        node[leaf] = parse_override_value(text, f"-S {shown!r}")
    return raw


def with_added_knobs(raw: dict) -> dict:
    """`raw` with each knob added since runs were recorded (sections.added) that it
    lacks set to the value runs had before it."""
    raw = copy.deepcopy(raw)
    for section, knobs in added().items():
        if isinstance(raw.get(section), dict):
            raw[section] = {**copy.deepcopy(knobs), **raw[section]}
    return raw


def from_dict(raw: Any, overrides: list[str] = ()) -> Params:
    """The params in the mapping `raw` (params.yaml's content) with `overrides`, validated."""
    if not isinstance(raw, dict):
        raise ParamsError("params: params.yaml must be a mapping of sections. Fix: restore it from git.")
    overrides = list(overrides)
    raw = with_added_knobs(apply_overrides(raw, overrides))
    for key in raw:
        if key not in Params.SECTIONS:
            unknown_key("", key, list(Params.SECTIONS))
    for key in Params.SECTIONS:
        if key not in raw:
            raise ParamsError(f"params: `{key}` is missing. Fix: add `{key}` under `the top level` in params.yaml "
                              "(see the shipped params.yaml).")
    if allowed := DATASETS.check(raw["datasets"]):
        fail("datasets", raw["datasets"], allowed)
    datasets = tuple(raw["datasets"])
    data = DataParams.parse(raw["data"], datasets)
    split = SplitParams.parse(raw["split"])
    model = ModelParams.parse(raw["model"])
    train = TrainParams.parse(raw["train"])
    study = StudyParams(**checked_fields(StudyParams, raw["study"], "study."))
    _check_grid(raw)
    min_side = table("nets.models", "min_side")(model)
    for name in datasets:
        if data.image_size[name] < min_side:
            fail(f"data.image_size.{name}", data.image_size[name], f">= {min_side} for {model.arch}")
    _check_overrides_win(train, datasets, overrides)
    return Params(datasets, data, split, model, train, study, raw)


def parse_params(text: str, origin: str, overrides: list[str] = ()) -> Params:
    """The params in `text` (params.yaml's content, from a file or an experiment's
    commit, named by `origin` in errors) with `overrides`, validated."""
    return from_dict(parse_yaml_text(text, origin), overrides)


def load_params(path: str | Path = PARAMS_FILE, overrides: list[str] = ()) -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params: {path} not found. Fix: run from the project root, where params.yaml lives.")
    return from_dict(read_yaml_file(path), overrides)
