"""Every file the pipeline reads or writes, relative to the project root: the one
place its names live. Stages, library and tests take their paths from here, and
tests/core/test_layout.py checks that dvc.yaml declares the same ones."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ablation.core.errors import UserError
from ablation.core.yaml_text import read_yaml_file

FETCHED = Path("data/fetched")
SPLIT = Path("data/split")
RESULTS = Path("results")
CHECKPOINTS = Path(".checkpoints")  # BackupAndRestore state: not a DVC output, so `dvc repro` keeps it
REPORTS = Path("reports")
GPU_REPORTS = REPORTS / "gpu"  # benchmarks/gpu_recipe.py's figures: no study may take the name

# Inside a fetched dataset's directory, and a split's.
INFO_FILE = "info.json"
MANIFEST_FILE = "manifest.csv"
COUNTS_FILE = "counts.json"


class LayoutError(UserError):
    """A name that would put an output outside the project."""


def inside(root: str | Path, *names: str) -> Path:
    """root/names: the one way a path is made from a name (a dataset, a seed
    directory), refused when it would leave `root`, which is in the project: an
    absolute name, `..`, or a symlink that points out. Params refuse such names at
    load; this is the last line, for every path a stage writes."""
    root, path = Path(root), Path(root).joinpath(*names)
    _check_root(root)
    if not path.resolve().is_relative_to(root.resolve()) or path.resolve() == root.resolve():
        raise LayoutError(f"{path} is not inside {root}: the name {'/'.join(names)!r} would write outside the "
                          "project. Fix: use a plain name (letters, digits, `_`, `-`), and no symlink out of "
                          f"{root}.")
    return path


def _check_root(root: Path) -> None:
    """A root named relative to the project (reports/, results/, data/fetched,
    .checkpoints) must stay in it: a symlink among its folders would make every
    output under it land elsewhere, out of git's and DVC's sight."""
    if root.is_absolute():
        return  # a root the caller chose (a test's temporary folder)
    project = Path.cwd().resolve()
    if not (project / root).resolve().is_relative_to(project):
        raise LayoutError(f"{root} leads to {(project / root).resolve()}, outside the project (a symlink): its "
                          f"outputs would be written there. Fix: make {root} a plain folder of the project "
                          f"(`rm {root.parts[0]} && mkdir {root.parts[0]}` if it is the link).")


def fetched_dir(dataset: str, root: Path = FETCHED) -> Path:
    return inside(root, dataset)


def fetch_metrics(dataset: str) -> Path:
    """Examples per source split and unusable files skipped: a DVC metric of fetch."""
    return inside(FETCHED, f"{dataset}.metrics.json")


def split_dir(dataset: str) -> Path:
    return inside(SPLIT, dataset)


def manifest(dataset: str) -> Path:
    return split_dir(dataset) / MANIFEST_FILE


def split_counts(dataset: str) -> Path:  # examples per split and class: a DVC metric of split
    return split_dir(dataset) / COUNTS_FILE


def run_dir(dataset: str, seed: int, results: Path = RESULTS) -> Path:
    return inside(results, dataset, f"seed{seed}")


def checkpoints_dir(dataset: str, seed: int) -> Path:
    """The resume states of one dataset and seed, one directory per arm: each is
    named by the key of everything that shapes its training (training/fit.py: run_key),
    so no other arm ever resumes it."""
    return inside(CHECKPOINTS, dataset, f"seed{seed}")


@dataclass(frozen=True)
class CheckpointFiles:
    """An interrupted run's state: Keras' BackupAndRestore directory, the dvclive
    logs of the epochs done (moved to the run's live/ once training completes) and
    what the state belongs to."""
    dir: Path

    @property
    def backup(self) -> Path:
        return self.dir / "backup"

    @property
    def live(self) -> Path:
        return self.dir / "live"

    @property
    def fingerprint(self) -> Path:  # what the key was made of
        return self.dir / "fingerprint.json"

    @property
    def epochs(self) -> Path:  # every finished epoch's logs and the starting loss
        return self.dir / "epochs.json"


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run (one dataset, one seed) under its directory."""
    dir: Path

    @property
    def model(self) -> Path:
        return self.dir / "model.keras"

    @property
    def train_metrics(self) -> Path:
        return self.dir / "train.json"

    @property
    def live(self) -> Path:  # dvclive's logs
        return self.dir / "live"

    @property
    def eval_dir(self) -> Path:
        return self.dir / "eval"

    @property
    def eval_metrics(self) -> Path:
        return self.eval_dir / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.eval_dir / "predictions.csv"

    @property
    def confusion(self) -> Path:
        return self.eval_dir / "confusion.png"

    @property
    def layer_responses(self) -> Path:
        return self.eval_dir / "layer_responses.json"


def run_files(dataset: str, seed: int, results: Path = RESULTS) -> RunFiles:
    return RunFiles(run_dir(dataset, seed, results))


@dataclass(frozen=True)
class ArmReportFiles:
    """The arm's report (the report stage); a study's files are StudyFiles."""
    dir: Path = REPORTS

    @property
    def report_md(self) -> Path:
        return inside(self.dir, "report.md")

    @property
    def metrics(self) -> Path:  # the arm's headline numbers: dvc.yaml's top-level metrics
        return inside(self.dir, "metrics.json")

    @property
    def figures(self) -> Path:
        return self.dir / "figures"

    @property
    def plots(self) -> Path:  # CSVs behind dvc.yaml's top-level plots
        return self.dir / "plots"

    def plot_dir(self, kind: str) -> Path:
        """A directory of dvc.yaml's top-level plots: one CSV per dataset."""
        return self.plots / kind

    def plot_csv(self, kind: str, dataset: str) -> Path:
        return inside(self.plot_dir(kind), f"{dataset}.csv")

    def figure(self, dataset: str, kind: str) -> Path:  # the arm report's figures/DATASET_KIND.png
        return inside(self.figures, f"{dataset}_{kind}.png")


# Inside a study's folder, one raw run directory per experiment (beside its params.yaml
# and these) mirrors the experiment's commit: results/DATASET/seedSEED/... .
EXPERIMENT_FILE = "experiment.json"  # which experiment commit and baseline the files came from
PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class StudyFiles:
    """One study's folder, reports/NAME/: its report and figures, the raw results
    of every run it reads (committed, so the report regenerates from a clone),
    its per-arm numbers and curves for `dvc metrics show` / `dvc plots show`
    (through its own dvc.yaml) and the Ray engine's logs of failed runs."""
    name: str
    root: Path = REPORTS

    @property
    def dir(self) -> Path:
        return inside(self.root, self.name)

    @property
    def report(self) -> Path:
        return self.dir / "study.md"

    @property
    def owner(self) -> Path:
        """study.json: the definition of the study the folder holds."""
        return self.dir / "study.json"

    @property
    def figures(self) -> Path:
        return self.dir / "figures"

    def figure(self, dataset: str, kind: str) -> Path:  # figures/DATASET_KIND.png
        return inside(self.figures, f"{dataset}_{kind}.png")

    @property
    def runs(self) -> Path:
        return self.dir / "runs"

    def run(self, experiment: str) -> Path:
        return inside(self.runs, experiment)

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def plots(self) -> Path:
        return self.dir / "plots"

    def plot_csv(self, kind: str, dataset: str) -> Path:
        return inside(self.plots / kind, f"{dataset}.csv")

    @property
    def dvc_yaml(self) -> Path:
        return self.dir / "dvc.yaml"

    @property
    def logs(self) -> Path:  # the Ray engine's logs of failed runs
        return self.dir / "logs"


def pipeline_report_outputs(dvc_file: str | Path = "dvc.yaml") -> set[str]:
    """The names directly under reports/ that a stage of dvc.yaml declares as an output,
    metric or plot (reports/figures: `figures`)."""
    path = Path(dvc_file)
    if not path.exists():
        return set()
    found: set[str] = set()

    def walk(node, in_outputs=False):
        if isinstance(node, dict):
            for key, value in node.items():
                if in_outputs and isinstance(key, str):
                    found.add(key)
                walk(value, in_outputs or key in ("outs", "metrics", "plots"))
        elif isinstance(node, list):
            for item in node:
                walk(item, in_outputs)
        elif in_outputs and isinstance(node, str):
            found.add(node)
    walk(read_yaml_file(path, str(path)))
    return {Path(p).parts[1] for p in found if Path(p).parts[:1] == ("reports",) and len(Path(p).parts) > 1}
