"""`ablate init`: a ready project in a folder of the user's: params.yaml with every
knob commented, the suite's dvc.yaml calling `ablate`, DVC's plot templates, an
example preset and network builder, ignore files; git and DVC initialized where
missing. Nothing the user has is replaced unless asked."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ablation.core import atomic_files, reading
from ablation.core.declarations import BUILDERS, OFFLINE_PAGE, PIPELINE, PLOT_TEMPLATES, PROJECT_FILES, params_yaml_text
from ablation.core.errors import ParamsError
from ablation.core.knobs import dataset_names

GUARDED = ("params.yaml", "dvc.yaml")  # a project's own definition: replaced only with --force
EXAMPLES = (f"{BUILDERS}/network.py", "studies/example.yaml")  # written where missing
IGNORED = {  # file -> lines it must hold (appended where missing)
    ".gitignore": ["/.cache/", "/.checkpoints/", "/dvc_plots/", "__pycache__/"],
    ".dvcignore": ["data/fetched/.*.staging", "data/fetched/.*.previous"],
}
HEADER = """\
# Every knob of this project's study. One arm = one set of these values; arms are
# DVC experiments, a study is a grid of them (`ablate study --grid
# model.options.residual=true,false`). model.options lists only the builder options
# you set (the others take the builder's defaults), so `dvc exp run` adds one as
# `-S '++model.options.residual=false'`. Validated whenever a stage loads it.
# Written by `ablate init`.
"""


def project_values(dataset: str, data: str) -> dict:
    """The knobs a new project sets apart from the suite's defaults: its dataset, its builder, no grid."""
    return {"datasets": [dataset], "data.source": "folder", "data.paths": {dataset: data},
            "data.image_size": {dataset: 32}, "data.augment": {dataset: "resized_crop_flip"},
            "model.arch": f"{BUILDERS}.network:build",
            "study.grid": {}}  # the suite's grid is over its own nets' knobs: a study here names its own


def _data_path(folder: Path, data: str | None) -> str:
    """The dataset's path as params.yaml holds it: relative to the project when inside it."""
    if data is None:
        return "data/images"
    path = Path(data).absolute()
    if not path.exists():
        raise ParamsError(f"--data {data}: no such folder or archive. Fix: pass a folder of class folders "
                          "(DATA/cat/*.jpg, DATA/dog/*.jpg) or a .tar.gz/.zip of one.")
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def _refuse_overwrite(folder: Path, force: bool) -> None:
    if force:
        return
    if present := [name for name in GUARDED if (folder / name).exists()]:
        raise ParamsError(f"{folder / present[0]} exists; `ablate init` never replaces a project's "
                          f"{' or '.join(GUARDED)}. Fix: init another folder, or add --force to replace "
                          f"{', '.join(present)}.")


def _tool(folder: Path, *command: str) -> subprocess.CompletedProcess:
    executable = ["git"] if command[0] == "git" else [sys.executable, "-m", "dvc"]
    return reading.command_output([*executable, *command[1:]], cwd=folder)


def _init_repositories(folder: Path) -> list[str]:
    """git and DVC where missing; what was done, said."""
    said = []
    top = _tool(folder, "git", "rev-parse", "--show-toplevel")
    if top.returncode:
        _tool(folder, "git", "init", "-q").check_returncode()
        said.append("git: initialized")
        top = _tool(folder, "git", "rev-parse", "--show-toplevel")
    if not (folder / ".dvc").is_dir():
        subdir = ["--subdir"] if Path(top.stdout.strip()).resolve() != folder.resolve() else []
        done = _tool(folder, "dvc", "init", "-q", *subdir)
        if done.returncode:
            raise ParamsError(f"`dvc init` failed in {folder}: {done.stderr.strip().splitlines()[-1:]}. Fix: run "
                              "`dvc init` there yourself, then `ablate init` again.")
        said.append("DVC: initialized")
    for key, value in (("core.autostage", "true"), ("core.analytics", "false"),
                       ("plots.html_template", OFFLINE_PAGE.relative_to(".dvc").as_posix())):
        _tool(folder, "dvc", "config", key, value)
    return said


def _write_files(folder: Path, dataset: str, data: str, force: bool) -> list[str]:
    written = []
    atomic_files.write_text(folder / "params.yaml", params_yaml_text(project_values(dataset, data), HEADER))
    shutil.copyfile(PROJECT_FILES / PIPELINE, folder / "dvc.yaml")
    written += ["params.yaml", "dvc.yaml"]
    for template in sorted((PROJECT_FILES / "plots").iterdir()):
        (folder / PLOT_TEMPLATES).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, folder / PLOT_TEMPLATES / template.name)
    for name in EXAMPLES:
        if force or not (folder / name).exists():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PROJECT_FILES / name, folder / name)
            written.append(name)
    for name, lines in IGNORED.items():
        have = (reading.read_text(folder / name, "record", f"make {folder / name} a text file, or remove it.",
                                  optional=True) or "").splitlines()
        if missing := [line for line in lines if line not in have]:
            atomic_files.write_text(folder / name, "\n".join([*have, *missing]) + "\n")
            written.append(name)
    return written


def init(folder: Path, data: str | None, dataset: str, force: bool) -> list[str]:
    """Writes a ready project into `folder` (made if missing); returns what it did, as lines."""
    if (why := dataset_names(dataset)) is not None:
        raise ParamsError(f"--dataset {dataset!r} is not a dataset name; allowed: {why}. Fix: pass --dataset NAME.")
    if folder.exists() and not folder.is_dir():
        raise ParamsError(f"{folder} is a file, not a folder. Fix: pass a folder to `ablate init`.")
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_overwrite(folder, force)
    data_path = _data_path(folder.absolute(), data)
    said = _init_repositories(folder)
    written = _write_files(folder, dataset, data_path, force)
    if data is None:
        (folder / data_path).mkdir(parents=True, exist_ok=True)
    here = os.path.relpath(folder)
    return [*said, f"wrote {', '.join(written)} in {here}/",
            f"dataset {dataset}: {data_path}" + ("  (empty: put one folder of images per class in it)"
                                                 if data is None else ""),
            f"network: {BUILDERS}/network.py (model.arch: {BUILDERS}.network:build); its keyword-only options are "
            "knobs (model.options.NAME)",
            "next: git add -A && git commit -m 'ablate init', then `dvc repro` (one arm) or "
            "`ablate study --preset studies/example.yaml` (a study)"]
