"""The overhead an experiment adds to its training, per stage process: counted from
the params, measured from a study's experiments and kept per machine kind."""
import statistics
import types

import pytest

from ablation.core.params import load_params
from ablation.study import overhead
from tests.conftest import ROOT


def result(name: str, train_seconds: dict[str, list[float]]):
    """An ArmResult's shape: {dataset: {seed: run}}, each run with its train.json."""
    runs = {dataset: {seed: {"train": {"train_seconds": s}} for seed, s in enumerate(by_seed)}
            for dataset, by_seed in train_seconds.items()}
    return types.SimpleNamespace(name=name, runs=runs, failed=not runs)


def test_an_experiment_runs_fetch_and_split_per_dataset_train_and_evaluate_per_run_and_one_report():
    params = load_params(ROOT / "params.yaml")
    datasets, seeds = len(params.datasets), len(params.train.seeds)
    assert overhead.stage_count(params) == 2 * datasets + 2 * datasets * seeds + 1


def test_a_study_s_experiments_set_the_overhead_the_next_estimate_uses(tmp_path):
    def never(): raise AssertionError("measured although a study had measured it")
    # a: 2 datasets x 1 seed, 9 stages, 100 s of training in 190 s; b: 1 dataset x 2 seeds, 7 stages
    results = [result("a", {"cifar10": [60.0], "cats_vs_dogs": [40.0]}), result("b", {"cifar10": [50.0, 50.0]}),
               result("c", {}), result("unseen", {"cifar10": [1.0]})]
    kept = overhead.record({"a": 190.0, "b": 135.0, "c": 10.0}, results, "quick", cache=tmp_path)
    assert kept == pytest.approx(statistics.median([90 / 9, 35 / 7]))
    seconds, origin = overhead.per_stage(cache=tmp_path, measure=never)
    assert seconds == kept and "from study quick's 2 experiment(s)" in origin


def test_without_a_study_here_one_stage_s_start_up_is_timed(tmp_path):
    seconds, origin = overhead.per_stage(cache=tmp_path, measure=lambda: 7.5)
    assert seconds == 7.5 and "start-up, timed now" in origin and not list(tmp_path.iterdir())
    assert overhead.record({}, [], "none", cache=tmp_path) is None and not list(tmp_path.iterdir())

