"""params.yaml as typed, frozen settings, validated once, when they load.

Each section of params.yaml is a frozen dataclass below. A field's annotation is
its type and its `knob(...)` says which values it allows; the default and the
comment for users are beside the key in params.yaml. A stage calls
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
from ablation.core.knobs import (
    boolean,
    dataset_names,
    fractions,
    grid_shape,
    key_of,
    knob,
    list_of,
    mapping,
    number,
    one_of,
    optional,
    path_value,
    per_dataset,
    subgrids,
    table,
)
from ablation.core.yaml_text import parse_override_value, parse_yaml_text, read_yaml_file

PARAMS_FILE = Path("params.yaml")
MAX_IMAGE_SIZE = 1024  # data.image_size: a side past this is a typo (a batch of 64 at 1024 px is 800 MB of uint8)
MAX_SEED = 2**31 - 1  # the seeds Keras, NumPy and TensorFlow all take


def _fail(key: str, value: Any, allowed: str, fix: str | None = None) -> None:
    fix = fix or f"set it in params.yaml or pass `-S {key}=<value>`"
    raise ParamsError(f"params: `{key}` is {value!r}; allowed: {allowed}. Fix: {fix}.")


def _frozen(value):
    """Lists become tuples, so settings cannot change after they load."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _checked_fields(cls, values: Any, prefix: str) -> dict:
    """The keys of `values` checked against the dataclass `cls`'s knobs: each known,
    present and allowed."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(values, dict):
        _fail(prefix.rstrip("."), values, "a mapping with keys " + ", ".join(names))
    for key in values:
        if key not in names:
            _fail(prefix + key, values[key], "known keys " + ", ".join(names), "remove or rename the key (typo?)")
    for item in dataclasses.fields(cls):
        if item.name not in values:
            raise ParamsError(f"params: `{prefix}{item.name}` is missing. Fix: add `{item.name}` under "
                              f"`{prefix.rstrip('.') or 'the top level'}` in params.yaml "
                              f"(see the shipped params.yaml).")
        if (allowed := item.metadata["check"](values[item.name])) is not None:
            _fail(prefix + item.name, values[item.name], allowed)
    return {key: _frozen(value) for key, value in values.items()}


# --- the sections ---------------------------------------------------------------------

@dataclass(frozen=True)
class DataParams:
    # Each knob's user: a table's module, or the function named after `#`.
    source: str = knob(key_of("data.fetch", "SOURCES"))
    paths: dict[str, str | None] = knob(per_dataset(optional(path_value)))  # fetch.SOURCES["folder"]
    image_size: dict[str, int] = knob(per_dataset(number(8, MAX_IMAGE_SIZE, integer=True)))  # inputs.load_split
    augment: dict[str, str] = knob(per_dataset(key_of("training.inputs", "AUGMENTATIONS")))
    limit: int | None = knob(optional(number(1, integer=True)))  # splitting.split
    max_file_mb: float = knob(number(0, open_low=True))  # ingest.ReadLimits
    max_image_megapixels: float = knob(number(0, open_low=True))  # ingest.ReadLimits

    @classmethod
    def parse(cls, values, datasets: tuple[str, ...]) -> DataParams:
        data = cls(**_checked_fields(cls, values, "data."))
        for name in datasets:
            for section in ("image_size", "augment"):
                if name not in getattr(data, section):
                    _fail(f"data.{section}.{name}", None, "a value for every dataset in `datasets`",
                          f"add `{name}:` under data.{section}")
        return data


@dataclass(frozen=True)
class SplitParams:
    # all three: splitting.split
    test_fraction: float = knob(number(0, 1, open_low=True))
    val_fraction: float = knob(number(0, 0.9))
    seed: int = knob(number(0, MAX_SEED, integer=True))

    @classmethod
    def parse(cls, values) -> SplitParams:
        return cls(**_checked_fields(cls, values, "split."))


@dataclass(frozen=True)
class ModelParams:
    arch: str = knob(key_of("nets.models", "ARCHITECTURES"))
    depth: int = knob(number(1, integer=True))  # per arch: models.ARCHITECTURES[arch].has_depth
    residual: bool = knob(boolean)  # models._Builder.block
    shortcut: str = knob(key_of("nets.models", "SHORTCUT_PROJECTS"))
    block: str = knob(key_of("nets.units", "BLOCK_CHOICES"), tag="")  # models.block_of
    unit: str = knob(key_of("nets.units", "UNITS"), tag="")
    norm: str = knob(key_of("nets.units", "NORMS"))
    norm_groups: int = knob(number(1, integer=True), tag="groups")  # units.NORMS["group"]
    shortcut_form: str = knob(key_of("nets.units", "SHORTCUT_FORMS"), tag="")
    shortcut_scale: float = knob(number(0, 1), tag="scale")  # units._scaled_sum
    scale_residual: bool = knob(boolean)  # units._scaled_sum
    gate_bias: float = knob(number())  # units._gated_sum
    shortcut_dropout: float = knob(number(0, 0.99))  # units._dropout_sum
    stem: str = knob(key_of("nets.models", "STEMS"))
    fc_init: str = knob(key_of("nets.models", "FC_INITIALIZERS"))
    weight_decay: float = knob(number(0), tag="wd")  # models._Builder, or recipe.OPTIMIZERS["adamw"]
    dense_units: int = knob(number(1, integer=True))  # models._vgg
    dropout: float = knob(number(0, 0.99))  # models._vgg

    @classmethod
    def parse(cls, values) -> ModelParams:
        model = cls(**_checked_fields(cls, values, "model."))
        if problem := table("nets.models", "refusal")(model):  # a combination that cannot be built
            _fail(*problem)
        return model


@dataclass(frozen=True)
class TrainParams:
    seeds: tuple[int, ...] = knob(list_of(number(0, MAX_SEED, integer=True), distinct=True))  # dvc.yaml's train matrix
    epochs: int = knob(number(1, integer=True))  # training.train
    batch_size: int = knob(number(1, integer=True), tag="batch")  # training.train
    optimizer: str = knob(key_of("training.recipe", "OPTIMIZERS"), tag="")
    learning_rate: float = knob(number(0, open_low=True), tag="lr")  # recipe.make_optimizer
    momentum: float = knob(number(0, 1))  # recipe.OPTIMIZERS["sgd"]
    clipnorm: float | None = knob(optional(number(0, open_low=True)))  # recipe.OPTIMIZERS
    schedule: str = knob(key_of("training.recipe", "SCHEDULES"))
    step_boundaries: tuple[float, ...] = knob(fractions)  # recipe.SCHEDULES["step"]
    warmup_epochs: int = knob(number(0, integer=True))  # recipe.StudySchedule
    mixed_precision: str = knob(one_of("auto", "float32", "mixed_float16", "mixed_bfloat16"), tag="")  # precision
    jit_compile: bool = knob(boolean)  # training.jit_compile
    steps_per_execution: int = knob(number(1, integer=True))  # training.train
    threads: int = knob(number(0, integer=True))  # training.set_threads
    distribute: str = knob(key_of("training.fit", "DISTRIBUTIONS"))
    # dataset -> {train key: value}: those keys for that dataset (see for_dataset).
    per_dataset: dict[str, dict[str, Any]] = knob(optional(mapping))

    @classmethod
    def parse(cls, values) -> TrainParams:
        train = cls(**_checked_fields(cls, values, "train."))
        per_dataset = train.per_dataset or {}
        checks = {f.name: f.metadata["check"] for f in dataclasses.fields(cls)
                  if f.name not in ("seeds", "per_dataset")}
        for dataset, overrides in per_dataset.items():
            prefix = f"train.per_dataset.{dataset}."
            if not isinstance(overrides, dict):
                _fail(prefix.rstrip("."), overrides, "a mapping of train keys")
            for key, value in overrides.items():
                if key not in checks:
                    _fail(prefix + key, value, "train keys " + ", ".join(checks), "remove or rename the key")
                if allowed := checks[key](value):
                    _fail(prefix + key, value, allowed)
        train = dataclasses.replace(train, per_dataset=per_dataset)
        for dataset in (None, *per_dataset):
            resolved = train.for_dataset(dataset) if dataset else train
            if resolved.warmup_epochs >= resolved.epochs:
                where = f"train.per_dataset.{dataset}." if dataset and "warmup_epochs" in per_dataset[dataset] \
                    else "train."
                _fail(f"{where}warmup_epochs", resolved.warmup_epochs,
                      f"fewer than the {resolved.epochs} epoch(s) trained (warm-up ramps lr/10 to lr, then the "
                      "schedule starts)", "lower it (0 = no warm-up) or raise train.epochs")
        return train

    def for_dataset(self, dataset: str) -> TrainParams:
        """These settings with `per_dataset.<dataset>` applied."""
        return dataclasses.replace(self, **self.per_dataset.get(dataset, {}), per_dataset={})


@dataclass(frozen=True)
class StudyParams:
    # dotted params key -> values, or a list of such mappings (subgrids); keys checked by Params
    grid: dict[str, tuple] | tuple[dict, ...] = knob(grid_shape)


@dataclass(frozen=True)
class RunSettings:
    """One dataset's resolved settings: what the fetch, split, train and evaluate
    stages of that dataset use."""
    dataset: str
    source: str
    path: str | None
    image_size: int
    augment: str
    limit: int | None
    max_file_mb: float
    max_image_megapixels: float
    split: SplitParams
    model: ModelParams
    train: TrainParams
    # the train keys that train.per_dataset.<dataset> sets: key -> (train.KEY, its value here)
    per_dataset_train: dict[str, tuple[Any, Any]]


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

    SECTIONS = ("datasets", "data", "split", "model", "train", "study")

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
    cls = {"data": DataParams, "split": SplitParams, "model": ModelParams, "train": TrainParams}.get(section)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    for part in reversed(parts):
        if part in fields:
            tag = fields[part].metadata["tag"]
            return part.replace("_", "-") if tag is None else tag
    return dotted.split(".")[-1].replace("_", "-")


def _check_grid(raw: dict) -> None:
    for grid in subgrids(raw["study"]["grid"]):
        _check_subgrid(raw, grid)


def _check_subgrid(raw: dict, grid: dict) -> None:
    if not grid:
        _fail("study.grid", grid, "a mapping of dotted param key -> list of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            _fail(f"study.grid.{key}", values, "a non-empty list of values")
        try:
            get(raw, key)
        except KeyError:
            _fail(f"study.grid.{key}", values, "keys that exist in params.yaml, e.g. model.depth")


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
                raise ParamsError(f"params: cannot set {key!r}: {part!r} is not a section.")
        node[leaf] = parse_override_value(text, f"-S {item!r}")
    return raw


# Knobs added after runs were recorded, with the value that builds what a params file
# without them built: the params.yaml of a committed experiment or study run (and
# an older params file) still loads, and means what it meant. A new knob goes here
# as well as in params.yaml.
KNOBS_ADDED = {"model": {"block": "auto", "unit": "original", "norm": "batch", "norm_groups": 8,
                         "shortcut_form": "identity", "shortcut_scale": 0.5, "scale_residual": False, "gate_bias": -6.0,
                         "shortcut_dropout": 0.5},
               "train": {"clipnorm": None}}


def with_added_knobs(raw: dict) -> dict:
    """`raw` with each of KNOBS_ADDED it lacks set to its value."""
    raw = copy.deepcopy(raw)
    for section, knobs in KNOBS_ADDED.items():
        if isinstance(raw.get(section), dict):
            raw[section] = {**knobs, **raw[section]}
    return raw


def from_dict(raw: Any, overrides: list[str] = ()) -> Params:
    """The params in the mapping `raw` (params.yaml's content) with `overrides`, validated."""
    if not isinstance(raw, dict):
        raise ParamsError("params: params.yaml must be a mapping of sections. Fix: restore it from git.")
    overrides = list(overrides)
    raw = with_added_knobs(apply_overrides(raw, overrides))
    for key in raw:
        if key not in Params.SECTIONS:
            _fail(key, raw[key], "known keys " + ", ".join(Params.SECTIONS), "remove or rename the key (typo?)")
    for key in Params.SECTIONS:
        if key not in raw:
            raise ParamsError(f"params: `{key}` is missing. Fix: add `{key}` under `the top level` in params.yaml "
                              "(see the shipped params.yaml).")
    if allowed := list_of(dataset_names, distinct=True)(raw["datasets"]):
        _fail("datasets", raw["datasets"], allowed)
    datasets = tuple(raw["datasets"])
    data = DataParams.parse(raw["data"], datasets)
    split = SplitParams.parse(raw["split"])
    model = ModelParams.parse(raw["model"])
    train = TrainParams.parse(raw["train"])
    study = StudyParams(**_checked_fields(StudyParams, raw["study"], "study."))
    _check_grid(raw)
    min_side = table("nets.models", "ARCHITECTURES")[model.arch].min_side
    for name in datasets:
        if data.image_size[name] < min_side:
            _fail(f"data.image_size.{name}", data.image_size[name], f">= {min_side} for {model.arch}")
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
