"""What every engine is to the study: it makes each arm's experiments, submits them
(or runs given experiments: --until-decided's seeds, --verify's rerun), and says
where a failed run's log is. The study reads the experiments back the same way
whichever engine ran them (collecting.collect), so an engine is one module and
one entry in engines/registry.py's ENGINES."""
from __future__ import annotations

from abc import ABC, abstractmethod

from ablation.core.layout import StudyFiles
from ablation.study.grid import Arm


class Engine(ABC):
    name: str  # --engine's value
    workers: str  # what runs the experiments, as the dry run's total names it
    local: bool  # runs on this machine, where a probe of the backends tells something
    # {experiment: estimated seconds} the driver sets for the progress ETA (dry_run.experiment_seconds),
    # and {experiment: wall seconds} an engine that times its experiments fills (overhead.record reads it).
    estimates: dict[str, float | None] | None = None
    walls: dict[str, float] | None = None

    @classmethod
    def add_arguments(cls, parser) -> None:
        """The engine's own command-line options (argparse), if any."""

    @classmethod
    def from_args(cls, args) -> Engine:
        """The engine as the parsed command line asks for it."""
        return cls()

    @abstractmethod
    def experiments(self, arm: Arm) -> list[Arm]:
        """The experiments this engine runs for `arm`, each as an arm of its own."""

    @abstractmethod
    def submit(self, arms: list[Arm], overrides: list[str], out: StudyFiles, resume: bool) -> None:
        """Runs every arm's experiments with the common `overrides`; with `resume`,
        only those that left no results. Returns when they have all ended."""

    @abstractmethod
    def run(self, experiments: list[Arm], overrides: list[str], out: StudyFiles, forced: tuple[str, ...] = ()) -> None:
        """Runs exactly these experiments (each one already: a seed added by
        --until-decided, a --verify rerun) with the common `overrides`; `forced`:
        stages run even where outputs for them are cached (a rerun to check).
        Returns when they have all ended."""

    @abstractmethod
    def log_hint(self, out: StudyFiles) -> str:
        """Where a failed experiment NAME's log is, as the study report says it."""
