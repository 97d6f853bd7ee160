"""The engines behind one interface: what experiments each makes of an arm, and the
checks the clone-based runs make before anything is submitted."""
import subprocess

import pytest

from ablation.study import grid as study_grid
from tests.conftest import ROOT

CIFAR20 = ["model.arch=resnet_cifar", "datasets=[cifar10]"]


def test_each_engine_names_its_experiments_and_the_study_reads_any_engines_back():
    from ablation.study.engines.base import Engine
    from ablation.study.engines.registry import DEFAULT, ENGINES
    assert DEFAULT in ENGINES and all(issubclass(engine, Engine) and engine.name == name
                                      for name, engine in ENGINES.items())
    params = study_grid.load_study_params(ROOT / "params.yaml", [*CIFAR20, "train.seeds=[0,1]"],
                                          {"model.depth": [20]}, [])
    [arm] = study_grid.arms(params)
    assert ENGINES["dvc"]().experiments(arm) == [arm]  # one experiment trains every seed
    per_seed = ENGINES["ray"]().experiments(arm)  # one experiment per seed, pinned to it
    assert [(e.name, e.params.train.seeds, e.overrides[-1]) for e in per_seed] == [
        ("resnet-cifar20-s0", (0,), "train.seeds=[0]"), ("resnet-cifar20-s1", (1,), "train.seeds=[1]")]
    assert [e.point["model.depth"] for e in per_seed] == [20, 20]


def test_ray_engine_needs_a_default_dvc_remote(monkeypatch):
    from ablation.study.engines import remote
    answers = {"status": "", "rev-parse": "abc123\n", "remote": "/srv/git/project.git\n", "fetch": "",
               "for-each-ref": "refs/remotes/origin/main\n"}
    monkeypatch.setattr(remote, "git", lambda *args, **kw: answers[args[0]])

    def captured(tool, *args, **kw):
        if tool == "git":
            return subprocess.CompletedProcess(args, 0, answers[args[0]])
        return subprocess.CompletedProcess(args, 1, "No default remote set\n", "")  # what DVC 3.67 prints, on stdout
    monkeypatch.setattr(remote, "captured", captured)
    with pytest.raises(remote.EngineError, match="no default DVC remote"):
        remote.check_baseline("origin")


def test_a_queue_worker_that_never_exits_is_stopped_and_the_study_goes_on(monkeypatch):
    """Every run has ended, but DVC's worker (so `dvc exp run --run-all`) never exits:
    the driver stops it with `dvc queue stop` and returns, its nonzero exit expected."""
    import threading

    from ablation.study.engines import dvc_queue
    from tests.conftest import arm
    stopped, calls = threading.Event(), []

    def fake_dvc(*args, check=True, check_when=lambda: True):
        calls.append(args)
        if "--run-all" in args:
            assert stopped.wait(20), "the hung worker was never stopped"
            assert not check_when()  # its exit code after the stop is not taken as the study's failure
            return 255
        return 0
    monkeypatch.setattr(dvc_queue, "check_repository", lambda: None)
    monkeypatch.setattr(dvc_queue, "busy_queue", lambda: [])
    monkeypatch.setattr(dvc_queue, "experiment_commits", lambda: {})
    monkeypatch.setattr(dvc_queue, "queue_states", lambda since: {"resnet20": "Success"})
    monkeypatch.setattr(dvc_queue, "captured", lambda *args: (calls.append(args), stopped.set()))
    monkeypatch.setattr(dvc_queue, "dvc", fake_dvc)
    monkeypatch.setattr(dvc_queue, "PROGRESS_EVERY", 0.05)
    monkeypatch.setattr(dvc_queue, "WORKER_GRACE", 0.2)
    dvc_queue.queue([arm("resnet20", True, 20, [])], [], jobs=1)
    assert calls[-2:] == [("exp", "run", "--run-all", "--jobs", "1"), ("dvc", "queue", "stop")]
