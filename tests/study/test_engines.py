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
