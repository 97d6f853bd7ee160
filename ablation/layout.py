"""Every file the pipeline reads or writes, relative to the project root: the one
place its names live. Stages, library and tests take their paths from here, and
tests/test_layout.py checks that dvc.yaml declares the same ones."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FETCHED = Path("data/fetched")
SPLIT = Path("data/split")
RESULTS = Path("results")
CHECKPOINTS = Path(".checkpoints")  # BackupAndRestore state: not a DVC output, so `dvc repro` keeps it
REPORTS = Path("reports")

# Inside a fetched dataset's directory, and a split's.
INFO_FILE = "info.json"
MANIFEST_FILE = "manifest.csv"
COUNTS_FILE = "counts.json"



def fetched_dir(dataset: str, root: Path = FETCHED) -> Path:
    return Path(root) / dataset


def fetch_metrics(dataset: str) -> Path:
    """Examples per source split and unusable files skipped: a DVC metric of fetch."""
    return FETCHED / f"{dataset}.metrics.json"


def split_dir(dataset: str) -> Path:
    return SPLIT / dataset


def manifest(dataset: str) -> Path:
    return split_dir(dataset) / MANIFEST_FILE


def split_counts(dataset: str) -> Path:  # examples per split and class: a DVC metric of split
    return split_dir(dataset) / COUNTS_FILE


def run_dir(dataset: str, seed: int, results: Path = RESULTS) -> Path:
    return Path(results) / dataset / f"seed{seed}"


def backup_dir(dataset: str, seed: int) -> Path:
    return CHECKPOINTS / dataset / f"seed{seed}"


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
class ReportFiles:
    """The arm's report (the report stage) and the study's (python -m stages.study)."""
    dir: Path = REPORTS

    @property
    def report_md(self) -> Path:
        return self.dir / "report.md"

    @property
    def metrics(self) -> Path:  # the arm's headline numbers: dvc.yaml's top-level metrics
        return self.dir / "metrics.json"

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
        return self.plot_dir(kind) / f"{dataset}.csv"

    @property
    def study_md(self) -> Path:
        return self.dir / "study.md"

    @property
    def study_figures(self) -> Path:
        return self.dir / "study"

    @property
    def study_logs(self) -> Path:  # the Ray engine's logs of failed runs
        return self.dir / "study-logs"
