"""The sections of params.yaml, each a frozen dataclass: a field's annotation is its
type and its `knob(...)` says which values it allows (the default and the comment
for users are beside the key in params.yaml). params.py puts them together."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ablation.core.errors import ParamsError
from ablation.core.knobs import (
    boolean,
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
    table,
)

MAX_IMAGE_SIZE = 1024  # data.image_size: a side past this is a typo (a batch of 64 at 1024 px is 800 MB of uint8)
MAX_SEED = 2**31 - 1  # the seeds Keras, NumPy and TensorFlow all take


def fail(key: str, value: Any, allowed: str, fix: str | None = None) -> None:
    fix = fix or f"set it in params.yaml or pass `-S {key}=<value>`"
    raise ParamsError(f"params: `{key}` is {value!r}; allowed: {allowed}. Fix: {fix}.")


def _frozen(value):
    """Lists become tuples, so settings cannot change after they load."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def checked_fields(cls, values: Any, prefix: str) -> dict:
    """The keys of `values` checked against the dataclass `cls`'s knobs: each known,
    present and allowed."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(values, dict):
        fail(prefix.rstrip("."), values, "a mapping with keys " + ", ".join(names))
    for key in values:
        if key not in names:
            fail(prefix + key, values[key], "known keys " + ", ".join(names), "remove or rename the key (typo?)")
    for item in dataclasses.fields(cls):
        if item.name not in values:
            raise ParamsError(f"params: `{prefix}{item.name}` is missing. Fix: add `{item.name}` under "
                              f"`{prefix.rstrip('.') or 'the top level'}` in params.yaml "
                              f"(see the shipped params.yaml).")
        if (allowed := item.metadata["check"](values[item.name])) is not None:
            fail(prefix + item.name, values[item.name], allowed)
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
        data = cls(**checked_fields(cls, values, "data."))
        for name in datasets:
            for section in ("image_size", "augment"):
                if name not in getattr(data, section):
                    fail(f"data.{section}.{name}", None, "a value for every dataset in `datasets`",
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
        return cls(**checked_fields(cls, values, "split."))


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
        model = cls(**checked_fields(cls, values, "model."))
        if problem := table("nets.models", "refusal")(model):  # a combination that cannot be built
            fail(*problem)
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
        train = cls(**checked_fields(cls, values, "train."))
        per_dataset = train.per_dataset or {}
        checks = {f.name: f.metadata["check"] for f in dataclasses.fields(cls)
                  if f.name not in ("seeds", "per_dataset")}
        for dataset, overrides in per_dataset.items():
            prefix = f"train.per_dataset.{dataset}."
            if not isinstance(overrides, dict):
                fail(prefix.rstrip("."), overrides, "a mapping of train keys")
            for key, value in overrides.items():
                if key not in checks:
                    fail(prefix + key, value, "train keys " + ", ".join(checks), "remove or rename the key")
                if allowed := checks[key](value):
                    fail(prefix + key, value, allowed)
        train = dataclasses.replace(train, per_dataset=per_dataset)
        for dataset in (None, *per_dataset):
            resolved = train.for_dataset(dataset) if dataset else train
            if resolved.warmup_epochs >= resolved.epochs:
                where = f"train.per_dataset.{dataset}." if dataset and "warmup_epochs" in per_dataset[dataset] \
                    else "train."
                fail(f"{where}warmup_epochs", resolved.warmup_epochs,
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
