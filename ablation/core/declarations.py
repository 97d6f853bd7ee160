"""What follows from the knob declarations (sections.py): each stage's `params:` in
dvc.yaml, the knobs that fingerprint a training run, each section's defaults and
params.yaml itself (`python -m ablation.core.declarations --write` writes both
files). tests/core/test_declarations.py holds dvc.yaml and params.yaml to these,
and tests/e2e/test_knob_reads.py holds them to what each stage reads."""
from __future__ import annotations

import copy
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ablation.core import atomic_files
from ablation.core.knobs import STAGES, Knob
from ablation.core.params import RunSettings
from ablation.core.sections import SECTIONS, knobs

TRAIN = "train"


def stage_knobs(stage: str) -> list[str]:
    """The dotted keys of the knobs `stage` reads, in params.yaml's order."""
    if stage not in STAGES:
        raise ValueError(f"{stage!r} is not a stage of dvc.yaml ({', '.join(STAGES)})")
    return [key for key, declared in knobs().items() if stage in declared.stages]


def stage_params(stage: str) -> list[str]:
    """`stage`'s `params:` in dvc.yaml: its knobs, a whole section where it reads all of
    that section's knobs (so DVC also tracks a knob added there later)."""
    keys, params = stage_knobs(stage), []
    for key in keys:
        section = key.split(".")[0]
        whole = all(other in keys for other in knobs() if other.split(".")[0] == section)
        entry = section if whole else key
        if entry not in params:
            params.append(entry)
    return params


def fingerprint(run: RunSettings) -> dict[str, Any]:
    """The knobs that shape a training run, as `run` resolves them: the train stage's."""
    return {key: run.value(key) for key in stage_knobs(TRAIN)}


def defaults(section: str) -> dict[str, Any]:
    """A section's knobs at their declared defaults (what the shipped params.yaml holds)."""
    return {key.split(".", 1)[1]: copy.deepcopy(declared.default) for key, declared in knobs().items()
            if key.split(".")[0] == section and "." in key}


# --- params.yaml, written from the declarations ---------------------------------------

HEADER = """\
# Every knob of the study. One arm = one set of these values; arms are DVC
# experiments (`dvc exp run -S model.residual=false`). Validated whenever a stage
# loads it. Written from the knobs' declarations (ablation/core/sections.py) by
# `python -m ablation.core.declarations --write` (with dvc.yaml's params): a
# study's values go in presets (studies/) or `-S`.
"""
COMMENT_COLUMN = 24  # where a key's one-line meaning starts, when the value leaves room


def _flow(value: Any) -> str:
    """A value as YAML on one line (`[0.5, 0.75]`, `null`, `A`)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()


def _comment_lines(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in text.splitlines()]


def _knob_lines(name: str, declared: Knob, indent: str) -> list[str]:
    lines = _comment_lines(declared.note, indent)
    if isinstance(declared.default, dict) and declared.default:
        lines.append(f"{indent}{name}:".ljust(COMMENT_COLUMN) + f"  # {declared.meaning}")
        return lines + [f"{indent}  {_flow(key)}: {_flow(value)}" for key, value in declared.default.items()]
    return lines + [f"{indent}{name}: {_flow(declared.default)}".ljust(COMMENT_COLUMN) + f"  # {declared.meaning}"]


def params_yaml_text(values: dict[str, Any] | None = None, header: str = HEADER) -> str:
    """The shipped params.yaml: every knob at its default with its meaning; `values`
    (dotted key -> value) in place of some defaults (a new project's)."""
    values = values or {}  # a value set here drops the note that explains the default
    declared_knobs = {key: dataclasses.replace(declared, default=values[key], note="") if key in values else declared
                      for key, declared in knobs().items()}
    lines = header.splitlines() + [""] + _knob_lines("datasets", declared_knobs["datasets"], "")
    for section, cls in SECTIONS.items():
        lines += ["", *_comment_lines(cls.__doc__, ""), f"{section}:"]
        for key, declared in declared_knobs.items():
            if key.startswith(section + "."):
                lines += _knob_lines(key.split(".", 1)[1], declared, "  ")
    return "\n".join(lines) + "\n"


# --- dvc.yaml's params, written from the declarations ----------------------------------

def with_stage_params(dvc_yaml: str) -> str:
    """dvc.yaml's text with each stage's `params:` list as the declarations say
    (stage_params); everything else, comments included, as it was."""
    lines, out, stage = dvc_yaml.splitlines(keepends=True), [], None
    index = 0
    while index < len(lines):
        line = lines[index]
        if (match := re.fullmatch(r"  ([a-z_]+):\n", line)) and match.group(1) in STAGES:
            stage = match.group(1)
        out.append(line)
        index += 1
        if stage and (match := re.fullmatch(r"( +)params:\n", line)):
            item = match.group(1) + "  - "
            while index < len(lines) and lines[index].startswith(item):
                index += 1
            out += [f"{item}{key}\n" for key in stage_params(stage)]
    return "".join(out)


# --- a user's project (`ablate init`): the suite's pipeline, installed ----------------

PROJECT_FILES = Path(__file__).parent / "project_files"  # what `ablate init` writes, besides params.yaml
PIPELINE = "pipeline.yaml"  # there, the new project's dvc.yaml: so named, DVC would read it as this repository's
PLOT_TEMPLATES = Path(".dvc", "plots")  # DVC's custom plot templates, which dvc.yaml's plots name
# The plots page with Vega inline (ablation/report/plots_page.py), beside the chart
# templates; .dvc/config's plots.html_template names it relative to .dvc/.
OFFLINE_PAGE = PLOT_TEMPLATES / "offline.html"
BUILDERS = "nets"  # a project's folder of network builders: a dependency of train
PROJECT_HEADER = f"""\
# fetch -> split -> train -> evaluate -> report, over `datasets` and `train.seeds`:
# the ablation suite's pipeline, run by its `ablate` command. Each stage lists the
# params it reads, so an arm that changes only model.options reruns train, evaluate
# and report. {BUILDERS}/ holds the network builders (model.arch): editing
# one makes train stale. Written by `ablate init`.
"""


def project_dvc_yaml(suite_dvc_yaml: str) -> str:
    """The suite's dvc.yaml as a user's project runs it: the same stages, commands,
    params and outputs; the suite's own source files are not deps there (they are the
    installed version's), the project's builders are train's."""
    lines = suite_dvc_yaml[suite_dvc_yaml.index("stages:\n"):].splitlines(keepends=True)
    kept = [line for line in lines if not re.fullmatch(r" +- ablation/\S+\.py\n", line)]
    train = kept.index("  train:\n")
    deps = train + next(i for i, line in enumerate(kept[train:]) if line == "    deps:\n")
    kept.insert(deps + 1, f"      - {BUILDERS}\n")
    emptied = [i for i, line in enumerate(kept) if line.strip() == "deps:" and kept[i + 1].strip()[:1] != "-"]
    return PROJECT_HEADER + "".join(line for i, line in enumerate(kept) if i not in emptied)


def write(root: Path) -> None:
    """The shipped params.yaml and dvc.yaml's params, from the declarations; the new
    project's dvc.yaml and plot templates, from the suite's."""
    atomic_files.write_text(root / "params.yaml", params_yaml_text())
    suite_dvc_yaml = with_stage_params((root / "dvc.yaml").read_text())
    atomic_files.write_text(root / "dvc.yaml", suite_dvc_yaml)
    atomic_files.write_text(PROJECT_FILES / PIPELINE, project_dvc_yaml(suite_dvc_yaml))
    for template in sorted((root / PLOT_TEMPLATES).glob("*")):  # the chart templates and the offline page
        atomic_files.write_text(PROJECT_FILES / "plots" / template.name, template.read_text())


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write(Path("."))
        print("wrote params.yaml and dvc.yaml's params from the knob declarations (ablation/core/sections.py), "
              f"and {PROJECT_FILES.relative_to(Path.cwd())}/ (what `ablate init` writes) from dvc.yaml")
    else:
        print(params_yaml_text(), end="")
