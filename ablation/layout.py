"""Where each stage reads and writes, relative to the project root (dvc.yaml
declares the same paths)."""
from pathlib import Path

FETCHED = Path("data/fetched")
SPLIT = Path("data/split")
RESULTS = Path("results")
CHECKPOINTS = Path(".checkpoints")  # BackupAndRestore state: not a DVC output, so `dvc repro` keeps it
REPORTS = Path("reports")


def fetched_dir(dataset: str) -> Path:
    return FETCHED / dataset


def fetch_metrics(dataset: str) -> Path:
    """Examples per source split and unusable files skipped: a DVC metric of fetch."""
    return FETCHED / f"{dataset}.metrics.json"


def split_dir(dataset: str) -> Path:
    return SPLIT / dataset


def run_dir(dataset: str, seed: int, results: Path = RESULTS) -> Path:
    return Path(results) / dataset / f"seed{seed}"


def backup_dir(dataset: str, seed: int) -> Path:
    return CHECKPOINTS / dataset / f"seed{seed}"
