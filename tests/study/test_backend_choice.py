"""Which Keras backend a study's runs train on: auto measures the installed ones once
per machine kind, a study keeps the backend of its runs, an engine that runs
elsewhere defaults to TensorFlow."""
import json

import pytest


def test_backend_auto_picks_the_fastest_measured_and_refuses_a_missing_one(monkeypatch, tmp_path):
    from ablation.core import backends
    from ablation.core.errors import ParamsError
    from ablation.study import backend_choice
    monkeypatch.setattr(backends, "installed", lambda: ["tensorflow", "jax", "torch"])
    rates = {"tensorflow": 70e9, "jax": 45e9, "torch": 95e9}
    backend, measured, lines = backend_choice.choose("auto", "params.yaml", [], lambda name, *_: rates[name],
                                                     cache=tmp_path)
    assert backend == "torch" and measured == rates
    assert lines == ["backend: auto -> torch (train-step GFLOP/s measured here: torch 95.0, tensorflow 70.0, jax 45.0)"]
    explicit = backend_choice.choose("jax", "params.yaml", [], lambda *_: pytest.fail("an explicit one is not probed"))
    assert explicit[0] == "jax"
    monkeypatch.setattr(backends, "installed", lambda: ["tensorflow"])
    with pytest.raises(ParamsError, match="--backend torch: torch is not installed. Fix: `pip install torch==.*cpu`"):
        backend_choice.choose("torch", "params.yaml", [])


def test_backend_auto_is_the_default_measures_once_per_machine_kind_and_keeps_a_study_s_backend(monkeypatch, tmp_path):
    from ablation.core import backends
    from ablation.study import backend_choice
    monkeypatch.delenv("KERAS_BACKEND")
    assert backend_choice.default() == "auto" and backend_choice.default(local=False) == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backend_choice.default() == "jax"  # the user's choice wins
    monkeypatch.setattr(backends, "installed", lambda: ["tensorflow", "torch"])
    probes = []

    def measure(name, *_):
        probes.append(name)
        return {"tensorflow": 70e9, "torch": 95e9}[name]
    first = backend_choice.choose("auto", "params.yaml", ["model.depth=20"], measure, cache=tmp_path / "backends")
    again = backend_choice.choose("auto", "params.yaml", ["model.depth=20"], measure, cache=tmp_path / "backends")
    assert first[0] == again[0] == "torch" and first[1] == again[1] and sorted(probes) == ["tensorflow", "torch"]
    assert "measured earlier on this machine kind, kept in " in again[2][0]
    backend_choice.choose("auto", "params.yaml", ["model.depth=56"], measure, cache=tmp_path / "backends")
    assert len(probes) == 4  # other probed settings are measured afresh
    kept = backend_choice.choose("auto", "params.yaml", [], lambda *_: pytest.fail("a study's backend is kept"),
                           kept=lambda: "tensorflow", cache=tmp_path / "backends")
    assert kept[0] == "tensorflow" and "the backend of this study's runs so far" in kept[2][0]
    monkeypatch.setattr(backends, "installed", lambda: ["tensorflow"])
    assert backend_choice.choose("auto", "params.yaml", ["model.depth=20"], lambda name, *_: 1e9, kept=lambda: "jax",
                           cache=tmp_path / "backends")[0] == "tensorflow"  # its backend is gone


def test_a_study_s_backend_is_the_one_its_raw_results_name(tmp_path):
    import gzip

    from ablation.core.layout import StudyFiles
    from ablation.study import backend_choice, raw_records
    out = StudyFiles("s", root=tmp_path)
    assert backend_choice.study_backend(raw_records.train_records(out)) is None  # no runs yet
    for experiment, backend, packed in (("plain-s0", "torch", False), ("resnet-s0", "torch", True)):
        record = out.run(experiment) / "results" / "cifar10" / "seed0" / "train.json"
        record.parent.mkdir(parents=True)
        text = json.dumps({"backend": backend})
        if packed:
            record.with_name("train.json.gz").write_bytes(gzip.compress(text.encode()))
        else:
            record.write_text(text)
    assert backend_choice.study_backend(raw_records.train_records(out)) == "torch"
    (out.run("plain-s1") / "results" / "cifar10" / "seed1").mkdir(parents=True)
    (out.run("plain-s1") / "results" / "cifar10" / "seed1" / "train.json").write_text('{"backend": "jax"}')
    assert backend_choice.study_backend(raw_records.train_records(out)) is None  # two backends: none to keep
