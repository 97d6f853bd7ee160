"""A study's grid of arms: every point of `study.grid` as an Arm with its name, grid
point and params, and what an arm's experiments left (ArmResult, read by
collecting.py); presets and the study's name."""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ablation.core import layout
from ablation.core.knobs import NAME_RULE, is_plain_name, subgrids
from ablation.core.params import Params, ParamsError, apply_overrides, from_dict, get, load_params, name_tag
from ablation.core.sections import MAX_SEED
from ablation.core.yaml_text import parse_override_value, read_yaml_file
from ablation.data.ingest import Progress
from ablation.nets.models import model_name
from ablation.study.deciding.decisions import Design
from ablation.study.raw_records import Source


def format_value(value) -> str:
    """A grid or preset value as `-S KEY=VALUE` and the reports spell it."""
    return json.dumps(value) if not isinstance(value, str) else value


def settings(point: dict, *leave_out: str) -> tuple[str, ...]:
    """A grid point's `KEY=VALUE` settings (as `-S` takes them), less the keys `leave_out`."""
    return tuple(f"{key}={format_value(value)}" for key, value in point.items() if key not in leave_out)


SEED_SUFFIX = "-s"  # an experiment of one seed of an arm is named ARM-sSEED


def seed_name(arm: str, seed: int) -> str:
    return f"{arm}{SEED_SUFFIX}{seed}"


def seed_of(name: str, arm: str) -> int | None:
    """SEED where `name` is the arm's experiment of one seed, `ARM-sSEED`; else None."""
    tail = name[len(arm) + len(SEED_SUFFIX):] if name.startswith(arm + SEED_SUFFIX) else ""
    # ASCII digits only (`s²` is a digit to str.isdigit, not to int), no longer than the largest seed
    return int(tail) if tail.isascii() and tail.isdigit() and len(tail) <= len(str(MAX_SEED)) else None


def dvc_settings(overrides, baseline: dict) -> list[str]:
    """`-S` values as DVC's (Hydra's) syntax takes them against the baseline params.yaml
    `baseline`: `KEY=VALUE` sets a key it has; one it lacks (a builder's option under
    model.options) is added, `++KEY=VALUE`."""
    def spelled(override: str) -> str:
        try:
            get(baseline, override.partition("=")[0])
        except KeyError:
            return "++" + override
        return override
    return [spelled(override) for override in overrides]


@dataclass(frozen=True)
class Arm:
    """One point of the study grid: its experiment's name, its grid point (dotted
    key -> value) and its params."""
    name: str
    point: dict
    params: Params

    @property
    def overrides(self) -> tuple[str, ...]:
        """The grid point as the `-S KEY=VALUE` settings its experiment runs with."""
        return self.settings()

    def settings(self, *leave_out: str) -> tuple[str, ...]:
        """The grid point's `KEY=VALUE` settings, less the keys `leave_out`."""
        return settings(self.point, *leave_out)

    def spelled(self, keys) -> dict[str, str]:
        """The grid point's values of `keys`, as its settings spell them."""
        return {key: format_value(value) for key, value in self.point.items() if key in keys}

    def seed_arm(self, seed: int) -> Arm:
        """One seed of the arm as an experiment of its own, `NAME-sSEED`: how Ray runs
        every seed, and how --until-decided and verify add one."""
        pinned = {"train.seeds": [seed]}
        return Arm(seed_name(self.name, seed), {**self.point, **pinned},
                   self.params.with_overrides(list(settings(pinned))))


@dataclass(frozen=True)
class ArmResult(Arm):
    """An arm with what its experiments left: `runs` {dataset: {seed: run}} (none:
    the arm failed), the names of its runs that left no results, and where the
    others were read from."""
    runs: dict = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()  # where each of its experiments was read from

    @property
    def failed(self) -> bool:
        return not self.runs


# The grid keys models.model_name already spells (`resnet-cifar20`, `plain50`).
MODEL_NAME_SAYS = ("model.arch", "model.depth", "model.residual")


def name_part(key: str, value) -> str:
    """A grid value as its arm's name says it: the key's tag (params.name_tag) and
    the value: `lr0.01`, `shortcutB`, `stem-small`, `mixed-bfloat16`,
    `jit-compile` / `no-jit-compile`, `step-boundaries0.3_0.6`."""
    tag = name_tag(key)
    if isinstance(value, bool):
        return (tag if value else f"no-{tag}") or str(value).lower()
    text = "_".join(map(format_value, value)) if isinstance(value, (list, tuple)) else format_value(value)
    if not tag:
        return text
    return f"{tag}{text}" if len(text) == 1 or text[0] in "0123456789-." else f"{tag}-{text}"


def arm_name(params: Params, grid_point: dict) -> str:
    """The model's name plus every grid value that name does not already say."""
    extra = [name_part(key, value) for key, value in grid_point.items() if key not in MODEL_NAME_SAYS]
    return "-".join([model_name(params.model), *extra]).replace("_", "-")


MAX_ARMS = 256  # a study's arms unless --max-arms says otherwise: each is an experiment to train


def arms(params: Params, max_arms: int = MAX_ARMS) -> list[Arm]:
    """Each point of the grid, named by arm_name; refused, before anything runs, when
    the grid makes more than `max_arms` points (counted before any is built), a name
    is not a plain name or two points get the same one."""
    grids = subgrids(params.study.grid)
    count = sum(math.prod(len(values) for values in grid.values()) for grid in grids)
    if count > max_arms:
        raise ParamsError(f"params: the grid makes {count:,} arms, more than --max-arms {max_arms}; each is a run to "
                          "train. Fix: grid over fewer keys or values, or pass --max-arms with a larger number.")
    points = [dict(zip(grid, values)) for grid in grids for values in itertools.product(*grid.values())]
    out, seen = [], {}
    progress = Progress("arms checked", every=50)
    for point in points:
        progress.step()
        overrides = settings(point)
        arm_params = params.with_overrides(list(overrides))
        name = arm_name(arm_params, point)
        if not is_plain_name(name.replace(".", "_")):  # an experiment name is a git ref and a log file's name
            raise ParamsError(f"params: the grid point {' '.join(overrides)} makes the experiment name {name!r}, "
                              "which is not a plain name (letters, digits, `.`, `_`, `-`; at most 64). "
                              "Fix: grid over values that make one, e.g. numbers or plain words, or fewer keys.")
        if name in seen:
            raise ParamsError(f"params: the grid points {' '.join(seen[name])} and {' '.join(overrides)} both make "
                              f"the experiment name {name!r}. Fix: list each grid value once (1e-4 and 0.0001 are "
                              "one value), or grid over values whose names differ.")
        seen[name] = overrides
        out.append(Arm(name, point, arm_params))
    return out


def parse_grid_item(item: str) -> tuple[str, list]:
    """`KEY=V1,V2` -> (KEY, [V1, V2]), each value read as DVC's -S reads it."""
    key, sep, values = item.partition("=")
    if not sep or not values:
        raise ParamsError(f"params: --grid {item!r} is not `key=v1,v2`. Fix: write e.g. --grid model.depth=20,32.")
    return key, [parse_override_value(v, f"--grid {item!r}") for v in values.split(",")]


def load_study_params(params_file, overrides: list[str], grid: dict | list | None, grid_items: list[str]) -> Params:
    """params.yaml with `overrides`, its study.grid replaced by `grid` (when given)
    and each subgrid updated by the `KEY=V1,V2` grid items. The base is validated
    at each key's first value in the first subgrid, so a grid may hold values the
    file alone would refuse (depth 56 while params.yaml says resnet depth 34)."""
    raw = read_yaml_file(params_file) if Path(params_file).exists() else None
    raw = apply_overrides(raw, overrides) if isinstance(raw, dict) else {}
    grids = subgrids(grid or (raw.get("study") or {}).get("grid") or {})
    items = dict(parse_grid_item(item) for item in grid_items)
    if len(items) < len(grid_items):
        keys = [parse_grid_item(item)[0] for item in grid_items]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        raise ParamsError(f"params: --grid names {', '.join(repeated)} more than once. Fix: give each key's values "
                          f"once, e.g. --grid {repeated[0]}=V1,V2,V3.")
    grids = [{**g, **items} if isinstance(g, dict) else g for g in grids]
    first = grids[0] if isinstance(grids[0], dict) else {}
    firsts = [f"{key}={format_value(values[0])}" for key, values in first.items()
              if isinstance(values, list) and values]
    params = load_params(params_file, [*overrides, *firsts])
    return from_dict({**params.raw, "study": {"grid": grids[0] if len(grids) == 1 else grids}})


def study_name(name: str | None, preset: str | None, grid: dict, overrides: list[str]) -> str:
    """The study's folder under reports/: `name` when given, else the preset's file
    name (studies/cifar10-cpu.yaml: cifar10-cpu), else its grid keys and a hash
    of its grid and -S values, so each ad-hoc study has a folder of its own."""
    if name is None and preset:
        name = Path(preset).stem
    if name is None:
        digest = hashlib.sha256(json.dumps([grid, sorted(overrides)], sort_keys=True).encode()).hexdigest()[:8]
        keys = dict.fromkeys(key for sub in subgrids(grid) for key in sub)
        name = "-".join(["grid", *(key.split(".")[-1] for key in keys), digest]).replace("_", "-")
    if not is_plain_name(name):
        raise ParamsError(f"params: the study name {name!r} is not a plain name ({NAME_RULE}); it names the "
                          "study's folder in reports/. Fix: pass --name with one, e.g. --name depth-sweep.")
    if name == layout.GPU_REPORTS.name:
        raise ParamsError(f"params: the study name {name!r} is taken: reports/{name} holds the GPU benchmark's "
                          "figures (benchmarks/gpu_recipe.py). Fix: pass --name with another name, e.g. --name "
                          "gpu-depth-sweep.")
    if name in layout.pipeline_report_outputs():
        raise ParamsError(f"params: the study name {name!r} would put the study in reports/{name}, an output of "
                          "the pipeline's report stage, which `dvc repro` deletes and rewrites. Fix: pass --name "
                          "with another name, e.g. --name depth-sweep.")
    return name


# Flags that say how a study runs, not what it computes (with how many values they take):
# left out of the command its report names, so --report-only writes the same bytes.
HOW_NOT_WHAT = {"--report-only": 0, "--resume": 0, "--replace-report": 0, "--jobs": 1, "--until-decided": 0,
                "--max-seeds": 1, "--seed-step": 1, "--rounds": 1, "--dry-run": 0}


def reproducing_command(argv: list[str]) -> str:
    """`ablate study ...` as the report names it: argv without HOW_NOT_WHAT."""
    kept, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg.split("=")[0] in HOW_NOT_WHAT:
            skip = HOW_NOT_WHAT[arg] if arg in HOW_NOT_WHAT else 0
        else:
            kept.append(arg)
    return " ".join(["ablate study", *kept])


PRESET_KEYS = {"set", "grid", "jobs", "report"}


def check_jobs(jobs, where: str = "--jobs") -> None:
    """Experiments at once: a positive integer (DVC's queue waits forever on fewer than one worker)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ParamsError(f"params: {where} is {jobs!r}; allowed: an integer >= 1. Fix: pass --jobs 1 (or 2 with "
                          "train.threads=1 on a 2-core machine).")


PRESETS = Path("studies")  # the committed studies' presets


def load_preset(path) -> dict:
    """A committed study: {"set": {dotted key: value} applied to every arm, "grid":
    {dotted key: [values]} (or a list of such subgrids) replacing study.grid, "jobs":
    experiments at once, "report": what its report decides (decisions.Design)}; with
    no path, a study of params.yaml's own grid (nothing set, the default design)."""
    if path is None:
        return {"set": [], "grid": {}, "jobs": None, "report": Design()}
    path = Path(path)
    if not path.is_file():
        presets = sorted(p.as_posix() for p in PRESETS.glob("*.yaml"))
        close = difflib.get_close_matches(path.as_posix(), presets, n=1)
        raise ParamsError(f"study preset {path} {'is a folder' if path.is_dir() else 'not found'}. Fix: pass "
                          + (f"{close[0]} (did you mean it?), or " if close else "")
                          + f"one of {', '.join(presets) or 'the files in studies/'}.")
    preset = read_yaml_file(path, f"study preset {path}")
    if not isinstance(preset, dict) or set(preset) - PRESET_KEYS:
        raise ParamsError(f"study preset {path}: top-level keys must be {sorted(PRESET_KEYS)}. "
                          "Fix: see studies/cifar10-cpu.yaml.")
    for key in ("set", "grid"):
        value = preset.get(key, {})
        if not isinstance(value, dict) and not (key == "grid" and isinstance(value, list) and value
                                                and all(isinstance(g, dict) for g in value)):
            raise ParamsError(f"study preset {path}: `{key}` must be a mapping of dotted param keys"
                              f"{' (or, for grid, a list of them)' if key == 'grid' else ''}. "
                              "Fix: see studies/cifar10-cpu.yaml.")
    check_jobs(preset.get("jobs"), f"`jobs` in {path}")
    return {"set": [f"{k}={format_value(v)}" for k, v in preset.get("set", {}).items()],
            "grid": preset.get("grid", {}), "jobs": preset.get("jobs"),
            "report": Design.parse(preset.get("report"), f"study preset {path}")}
