"""The sections of params.yaml, each a frozen dataclass whose fields are its knobs:
a field's annotation is its type and its `knob(...)` its one declaration (which
values it allows, default, meaning, the stages that read it, the value runs had
before it existed). params.py puts the sections together; declarations.py derives
params.yaml, dvc.yaml's params and the run fingerprint from them."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from ablation.core.errors import ParamsError
from ablation.core.knobs import (
    ALWAYS,
    Knob,
    boolean,
    builder_reference,
    dataset_names,
    either,
    fractions,
    grid_shape,
    key_of,
    knob,
    list_of,
    mapping,
    number,
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


def unknown_key(prefix: str, key: str, names: list[str]) -> None:
    """A key no knob declares: said as such, with the closest known one."""
    elsewhere = [k for k in knobs() if k.split(".")[-1] == key]  # the right key in another section
    close = elsewhere or [prefix + c for c in difflib.get_close_matches(str(key), names, n=1)]
    guess = f"did you mean `{close[0]}`? " if close else ""
    raise ParamsError(f"params: `{prefix}{key}` is an unknown key; {guess}(known under "
                      f"`{prefix.rstrip('.') or 'the top level'}`: {', '.join(names)}). Fix: rename or remove it "
                      "(in params.yaml, or the `-S` that set it).")


def declared(item: dataclasses.Field) -> Knob:
    return item.metadata["knob"]


def checked_fields(cls, values: Any, prefix: str) -> dict:
    """The keys of `values` checked against the dataclass `cls`'s knobs: each known,
    present and allowed."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(values, dict):
        fail(prefix.rstrip("."), values, "a mapping with keys " + ", ".join(names))
    for key in values:
        if key not in names:
            unknown_key(prefix, key, names)
    for item in dataclasses.fields(cls):
        if item.name not in values:
            raise ParamsError(f"params: `{prefix}{item.name}` is missing. Fix: add `{item.name}` under "
                              f"`{prefix.rstrip('.') or 'the top level'}` in params.yaml "
                              f"(see the shipped params.yaml).")
        if (allowed := declared(item).check(values[item.name])) is not None:
            fail(prefix + item.name, values[item.name], allowed)
    return {key: _frozen(value) for key, value in values.items()}


# --- the sections ---------------------------------------------------------------------

FETCH, SPLIT, TRAIN, EVALUATE, REPORT = "fetch", "split", "train", "evaluate", "report"
ARM = (TRAIN, REPORT)  # what the arm is: trains it, and names it and its paper number in the report

# The top-level list of datasets: no section of its own (the stages' foreach/matrix
# in dvc.yaml run over it; a stage's DATASET argument must be one of them).
DATASETS = Knob(list_of(dataset_names, distinct=True), ["cifar10"],
                "the datasets the pipeline runs (tfds names; any other name works from a folder)", (REPORT,),
                note="The shipped arm is a first result for a 2-core CPU, offline: CIFAR ResNet-20 on\n"
                     "the CIFAR-10 archive for 2 epochs. The course's GPU-sized ResNet-34/50 on\n"
                     "cats_vs_dogs is a preset: studies/seed-cats-vs-dogs.yaml.")


@dataclass(frozen=True)
class DataParams:
    """Where each dataset's images come from, and how they are read and fed."""
    # Each knob's user: a table's module, or the function named after `#`.
    source: str = knob(key_of("data.fetch", "SOURCES"), "folder",
                       "folder (data.paths) | tfds (downloads; needs a network)", (FETCH,))
    paths: dict[str, str | None] = knob(  # fetch.SOURCES["folder"]
        per_dataset(optional(path_value)),
        {"cifar10": "../shared/datasets/cifar10-jpeg.tar.gz",
         "cats_vs_dogs": "../shared/datasets/cats_vs_dogs-sample.tar.gz"},
        "for source=folder: a directory or .tar.gz/.tgz/.zip per dataset", (FETCH,))
    image_size: dict[str, int] = knob(  # inputs.load_split
        per_dataset(number(8, MAX_IMAGE_SIZE, integer=True)), {"cifar10": 32, "cats_vs_dogs": 128, "svhn": 32},
        f"side length the network sees: 8 to {MAX_IMAGE_SIZE}", (TRAIN, EVALUATE),
        note="cats_vs_dogs 128: photos are ~500x375 (tfds) or 180x180 (offline sample); 128 keeps\n"
             "the animal recognisable at a third of the cost of 224 and gives the ImageNet stem a\n"
             "4x4 final feature map. svhn: tfds' svhn_cropped (data.source=tfds), 32x32 digits.")
    augment: dict[str, str] = knob(
        per_dataset(key_of("training.inputs", "AUGMENTATIONS")),
        {"cifar10": "pad_crop_flip", "cats_vs_dogs": "resized_crop_flip", "svhn": "none"},
        "none | pad_crop_flip (paper, CIFAR) | resized_crop_flip (photos); svhn: none (a flipped digit is "
        "another digit, or none)", (TRAIN,))
    limit: int | None = knob(optional(number(1, integer=True)), None,  # splitting.split
                             "cap on examples per split (quick runs, tests); null = all",
                             (SPLIT, TRAIN))  # train: in the data order key runs have recorded
    max_file_mb: float = knob(number(0, open_low=True), 64, "the largest input file read, in MB",  # ingest.ReadLimits
                              (FETCH,),
                              note="Per input file, checked before it is read or decoded: a file or image over\n"
                                   "these is skipped and counted like a corrupt one (a small archive cannot make\n"
                                   "the fetch read gigabytes). PetImages' largest photo is far below both.")
    max_image_megapixels: float = knob(number(0, open_low=True), 50,  # ingest.ReadLimits
                                       "the largest image decoded, in megapixels", (FETCH,))

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
    """How each dataset is split into train, validation and test (splitting.split)."""
    test_fraction: float = knob(number(0, 1, open_low=True), 0.2,
                                "only for datasets without a test split (cats_vs_dogs)", (SPLIT,))
    val_fraction: float = knob(number(0, 0.9), 0.1,
                               "carved from train, stratified; 0 = no validation split", (SPLIT,))
    seed: int = knob(number(0, MAX_SEED, integer=True), 42, "the split's shuffle", (SPLIT,))

    @classmethod
    def parse(cls, values) -> SplitParams:
        return cls(**checked_fields(cls, values, "split."))


@dataclass(frozen=True)
class ModelParams:
    """The network: its architecture and depth, and whether it adds the shortcuts."""
    arch: str = knob(either(key_of("nets.models", "ARCHITECTURES"), builder_reference), "resnet_cifar",
                     "resnet | resnet_cifar | vgg | package.module:function (your own network's builder)", ARM)
    depth: int = knob(number(1, integer=True), 20,  # per arch: models.ARCHITECTURES[arch].has_depth
                      "resnet 18/34/50/101/152; resnet_cifar 6n+2; vgg 11/13/16/19", ARM)
    residual: bool = knob(boolean, True,  # models._Builder.block
                          "false = the plain twin (same layers, no shortcut additions)", ARM)
    shortcut: str = knob(key_of("nets.models", "SHORTCUT_PROJECTS"), "A",
                         "A identity+zero-pad | B projection where shapes change | C projection everywhere", ARM)
    block: str = knob(key_of("nets.units", "BLOCK_CHOICES"), "auto",  # models.block_of
                      "auto (resnet: Table 1's; resnet_cifar: basic) | basic | bottleneck (resnet_cifar: depth 9n+2, "
                      "e.g. 164)", ARM, before="auto", tag="")
    unit: str = knob(key_of("nets.units", "UNITS"), "original",
                     "original | bn_after_addition | relu_before_addition | relu_only_preactivation | "
                     "full_preactivation", ARM, before="original", tag="",
                     note="He et al. 2016 (Identity Mappings), Fig. 4: where BN and ReLU sit in a unit.")
    norm: str = knob(key_of("nets.units", "NORMS"), "batch",
                     "batch | group (GroupNorm, Wu & He 2018) | none (no norm anywhere; convolutions get a bias)",
                     ARM, before="batch")
    norm_groups: int = knob(number(1, integer=True), 8,  # units.NORMS["group"]
                            "group: the channel groups of each GroupNorm (must divide the narrowest layer's 16 or "
                            "64 channels)", ARM, before=8, tag="groups")
    shortcut_form: str = knob(key_of("nets.units", "SHORTCUT_FORMS"), "identity",
                              "identity | constant_scaling | exclusive_gating | shortcut_only_gating | conv1x1 | "
                              "dropout", ARM, before="identity", tag="",
                              note="He et al. 2016, Fig. 2 / Table 1: what the shortcut does before the addition.")
    shortcut_scale: float = knob(number(0, 1), 0.5,  # units._scaled_sum
                                 "constant_scaling: the shortcut times this (the paper's 0.5)", ARM, before=0.5,
                                 tag="scale")
    scale_residual: bool = knob(boolean, False,  # units._scaled_sum
                                "constant_scaling: the residual branch times 1 - shortcut_scale too (the paper's "
                                "12.35% row)", ARM, before=False)
    gate_bias: float = knob(number(), -6.0,  # units._gated_sum
                            "exclusive/shortcut_only_gating: initial gate bias b_g (the paper's best, -6; it tries "
                            "0 to -6)", ARM, before=-6.0)
    shortcut_dropout: float = knob(number(0, 0.99), 0.5,  # units._dropout_sum
                                   "dropout: the rate on the shortcut (the paper's 0.5)", ARM, before=0.5)
    stem: str = knob(key_of("nets.models", "STEMS"), "auto",
                     "auto | imagenet (7x7/2 + max-pool) | small (3x3/1); auto = imagenet from 96 px up", ARM)
    fc_init: str = knob(key_of("nets.models", "FC_INITIALIZERS"), "linear_default",
                        "linear_default (torch.nn.Linear's, as the paper's Torch reference) | he_normal", ARM,
                        note="Measured at init on 1,000 CIFAR-10 training images (studies/fc_init_probe.py), mean\n"
                             "of seeds 0 and 1: initial loss of resnet_cifar56 6.36 with he_normal vs 3.14 with\n"
                             "linear_default (ln 10 = 2.30), image-independent logit offsets (std over classes of\n"
                             "the mean logit) 3.9 vs 1.6; resnet_cifar20 3.9 vs 2.8; the plain twins 2.3-2.4\n"
                             "either way. he_normal's start is what collapsed the 80-step residual arms to chance.")
    weight_decay: float = knob(number(0), 0.0001,  # models._Builder, or recipe.OPTIMIZERS["adamw"]
                               "L2 on every kernel (with train.optimizer adamw: its decoupled decay instead)", ARM,
                               tag="wd")
    dense_units: int = knob(number(1, integer=True), 4096,  # models._vgg
                            "vgg: width of its two hidden dense layers", ARM)
    dropout: float = knob(number(0, 0.99), 0.5, "vgg: dropout after each hidden dense layer", ARM)  # models._vgg
    options: dict[str, Any] = knob(mapping, {},  # nets/builders.py checks them against the builder's signature
                                   "your builder's keyword-only options (model.arch package.module:function), "
                                   "e.g. {layer_scale: false}; {} for the built-in nets", ARM, before={}, keyed=True)

    @classmethod
    def parse(cls, values) -> ModelParams:
        model = cls(**checked_fields(cls, values, "model."))
        if problem := table("nets.models", "refusal")(model):  # a combination that cannot be built
            fail(*problem)
        return model


@dataclass(frozen=True)
class TrainParams:
    """How each run trains: seeds, schedule, optimizer, precision and threads."""
    seeds: tuple[int, ...] = knob(list_of(number(0, MAX_SEED, integer=True), distinct=True), [0],
                                  "one training run per seed; several give error bars", (REPORT,))
    epochs: int = knob(number(1, integer=True), 2, "passes over the training split", (TRAIN, REPORT))
    batch_size: int = knob(number(1, integer=True), 128, "images per step, over all replicas", (TRAIN,),
                           tag="batch")
    optimizer: str = knob(key_of("training.recipe", "OPTIMIZERS"), "sgd",
                          "sgd | adam | adamw (AdamW applies model.weight_decay itself, as no L2 term)", (TRAIN,),
                          tag="")
    learning_rate: float = knob(number(0, open_low=True), 0.1, "the peak learning rate",  # recipe.make_optimizer
                                (TRAIN,), tag="lr")
    momentum: float = knob(number(0, 1), 0.9, "sgd only", (TRAIN,))  # recipe.OPTIMIZERS["sgd"]
    clipnorm: float | None = knob(optional(number(0, open_low=True)), None,  # recipe.OPTIMIZERS
                                  "clip each gradient to this L2 norm (the seed's VGG recipe: 1.0); null = no "
                                  "clipping", (TRAIN,), before=None)
    schedule: str = knob(key_of("training.recipe", "SCHEDULES"), "step", "step | cosine | constant", (TRAIN,))
    step_boundaries: tuple[float, ...] = knob(fractions, [0.5, 0.75],  # recipe.SCHEDULES["step"]
                                              "step: divide lr by 10 at these fractions of training (paper: "
                                              "32k/48k of 64k iterations)", (TRAIN,))
    warmup_epochs: int = knob(number(0, integer=True), 0,  # recipe.StudySchedule
                              "linear warm-up from lr/10 (the paper warms up ResNet-110 at 0.01)", (TRAIN,))
    mixed_precision: str = knob(key_of("core.precision", "POLICIES"), "auto",
                                "auto: what core/precision.py measured fastest on this machine | float32 | "
                                "mixed_float16 | mixed_bfloat16", (TRAIN,), tag="")
    jit_compile: bool = knob(boolean, False,  # fit.jit_compile
                             "XLA under TensorFlow; slower on CPU, may help on GPU (JAX always compiles)", (TRAIN,))
    steps_per_execution: int = knob(number(1, integer=True), 1,  # fit.train
                                    "train steps per call into the compiled step (fewer Python round trips)",
                                    (TRAIN,))
    threads: int = knob(number(0, integer=True), 0,  # fit.set_threads
                        "TensorFlow intra/inter-op and tf.data threads (and XLA's under JAX); 0 = all cores (set 1 "
                        "with `study --jobs 2`)", (TRAIN,))
    distribute: str = knob(key_of("training.fit", "DISTRIBUTIONS"), "auto",
                           "auto (MirroredStrategy over all GPUs when >1) | none | mirrored", (TRAIN,))
    # dataset -> {train key: value}: those keys for that dataset (see for_dataset).
    per_dataset: dict[str, dict[str, Any]] = knob(
        optional(mapping), {"cats_vs_dogs": {"batch_size": 64, "learning_rate": 0.05}},
        "any train key set for one dataset, over the key above", (TRAIN,),
        note="A key here takes precedence over train.KEY for that dataset: `-S train.batch_size=16`\n"
             "on the command line (stages, study) stops with an error naming\n"
             "`train.per_dataset.<dataset>.batch_size` rather than being ignored for it; the train\n"
             "stage prints the values in effect.")

    @classmethod
    def parse(cls, values) -> TrainParams:
        train = cls(**checked_fields(cls, values, "train."))
        per_dataset = train.per_dataset or {}
        checks = {f.name: declared(f).check for f in dataclasses.fields(cls)
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
    """The ablation grid `ablate study` queues as DVC experiments."""
    # keys checked by Params; read by the study command, no stage of dvc.yaml
    grid: dict[str, tuple] | tuple[dict, ...] = knob(
        grid_shape, {"model.residual": [True, False], "model.depth": [20, 56]},
        "dotted params key -> values, or a list of such mappings (their union)", ())


# params.yaml's sections, in its order, by name.
SECTIONS = {"data": DataParams, "split": SplitParams, "model": ModelParams, "train": TrainParams,
            "study": StudyParams}


def knobs() -> dict[str, Knob]:
    """Every knob by dotted key (`datasets`, `model.depth`), in params.yaml's order."""
    found = {"datasets": DATASETS}
    for section, cls in SECTIONS.items():
        found.update({f"{section}.{item.name}": declared(item) for item in dataclasses.fields(cls)})
    return found


def added() -> dict[str, dict[str, Any]]:
    """section -> {knob: the value runs had before it existed}, for the knobs added after
    runs were recorded: an older params file (a committed experiment's or study run's)
    still loads, and means what it meant."""
    found: dict[str, dict[str, Any]] = {}
    for key, declaration in knobs().items():
        if declaration.before != ALWAYS:
            section, name = key.split(".")
            found.setdefault(section, {})[name] = declaration.before
    return found
