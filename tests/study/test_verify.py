"""A study's committed raw results and the check of a rerun against them, without
running the pipeline: the raw round trip, the params match that decides whether
an experiment is this study's, and the verdicts on the same and another machine."""
import copy
import gzip

import pytest

from ablation.core import machine
from ablation.core.layout import StudyFiles
from ablation.core.params import load_params
from ablation.study import raw_records, verify
from ablation.study.raw_records import Source
from tests.conftest import ROOT

MACHINE = {"cpu": "AMD EPYC", "cpu_flags": ["avx2", "fma", "avx512f", "avx512_bf16"], "cores": 2, "gpus": [],
           "backend": "tensorflow", "threads": 1, "python": "3.11.7", "versions": {"tensorflow": "2.21.0"}}


def run(accuracy: float, on=MACHINE, loss=1.0) -> dict:
    predictions = "id,label,predicted,confidence\n" + "".join(
        f"i{i},cat,{'cat' if i < accuracy * 10 else 'dog'},0.9\n" for i in range(10))
    return {"train": {"diverged": False, "train_loss": loss, "train_seconds": 12.5, "machine": on},
            "eval": {"accuracy": accuracy, "loss": loss}, "history": {"loss": [2.0, loss]},
            "responses": {"std": [1.0]}, "predictions": predictions}


def test_the_machine_record_names_what_picks_the_kernels():
    here = machine.describe("tensorflow", 1)
    assert here["cores"] >= 1 and here["threads"] == 1 and here["backend"] == "tensorflow"
    assert set(here["cpu_flags"]) <= set(machine.KERNEL_FLAGS) and here["versions"]["keras"]
    other = {**here, "cpu_flags": [*here["cpu_flags"], "amx_bf16"]}
    assert machine.kind(other) != machine.kind(here) and machine.kind({**here, "cores": 99}) == machine.kind(here)
    assert machine.differences(here, other) == [f"cpu_flags: {here['cpu_flags']} -> {other['cpu_flags']}"]


def test_a_rerun_on_the_same_machine_kind_must_be_identical():
    recorded = run(0.7)
    same = copy.deepcopy(recorded)
    same["train"]["train_seconds"] = 99.0  # timings are not results
    verdict = verify.judge(recorded, same, {0: recorded, 1: run(0.8)}, "r20 seed 0")
    assert verdict.agrees and "identical to the record" in str(verdict)

    moved = run(0.8, loss=0.9)
    verdict = verify.judge(recorded, moved, {0: recorded, 1: run(0.8)}, "r20 seed 0")
    assert not verdict.agrees and "NOT identical on the same machine kind" in str(verdict)
    assert "eval accuracy: 0.7 -> 0.8" in str(verdict) and "history loss: first differs at epoch 2" in str(verdict)
    assert "predictions differ (1 of 10 test images predicted otherwise)" in str(verdict)
    newer = run(0.8, on={**MACHINE, "versions": {"tensorflow": "2.22.0"}})
    assert "Library versions differ (tensorflow: 2.21.0 -> 2.22.0)" in str(verify.judge(recorded, newer, {}, "r"))


def test_a_rerun_on_another_machine_kind_is_judged_against_the_other_seeds_and_can_fail():
    xeon = {**MACHINE, "cpu": "Intel Xeon", "cpu_flags": ["avx2", "fma", "avx512f", "amx_bf16"]}
    # Two seeds, as the committed studies have: the rerun's own seed leaves one, no spread to judge by.
    arm = {0: run(0.7096), 1: run(0.7201)}
    verdict = verify.judge(arm[0], run(0.62, on=xeon), arm, "resnet-cifar20 seed 0")
    assert verdict.agrees is None and "INCONCLUSIVE: the record has 1 other seed(s)" in str(verdict)
    # Three seeds: two others, an interval of +-15.6 seed stds, which a clear regression (0.62) would pass.
    arm = {0: run(0.7096), 1: run(0.7201), 2: run(0.7150)}
    wide = verify.judge(arm[0], run(0.62, on=xeon), arm, "resnet-cifar20 seed 0")
    assert wide.agrees is None and "±15.6 seed standard deviations wide" in str(wide)
    # Six seeds: five others, so the check can fail (0.62) and pass (0.715).
    arm = {s: run(a) for s, a in enumerate([0.7096, 0.7201, 0.7150, 0.7080, 0.7190, 0.7120])}
    far = verify.judge(arm[0], run(0.62, on=xeon), arm, "resnet-cifar20 seed 0")
    assert far.agrees is False and "does NOT agree" in str(far) and "another machine kind (cpu: AMD EPYC" in str(far)
    near = verify.judge(arm[0], run(0.715, on=xeon), arm, "resnet-cifar20 seed 0")
    others = [0.7201, 0.7150, 0.7080, 0.7190, 0.7120]
    low, high = verify.prediction_interval(others)
    assert near.agrees is True and f"[{low:.4f}, {high:.4f}]" in str(near)
    assert "(±3.0 seed standard deviations)" in str(near)
    assert verify.half_width_in_stds(2) == pytest.approx(12.706 * 1.2247, rel=1e-3)


def test_verify_names_a_run_of_the_study():
    assert verify.split_target("resnet-cifar20", ["resnet-cifar20"]) == ("resnet-cifar20", None)
    assert verify.split_target("resnet-cifar20-s1", ["resnet-cifar20"]) == ("resnet-cifar20", 1)
    with pytest.raises(verify.ParamsError, match="Fix: pass an arm \\(resnet-cifar20\\)"):
        verify.split_target("plain-cifar56", ["resnet-cifar20"])


def test_raw_results_round_trip_compressed_and_match_only_their_own_params(tmp_path):
    params = load_params(ROOT / "params.yaml")
    params_text = (ROOT / "params.yaml").read_text()
    big = "id,label,predicted,confidence\n" + "x,cat,cat,0.5\n" * 10_000
    commit = {"params.yaml": params_text, "reports/metrics.json": "{}\n",
              "results/cifar10/seed0/train.json": '{"diverged": false}\n',
              "results/cifar10/seed0/eval/predictions.csv": big}
    out = StudyFiles("tiny", tmp_path)
    source = Source("resnet34", commit.get, "experiment abc1234")
    target = raw_records.write_raw(source, ["cifar10"], [0], out, {"commit": "abc"})
    packed = target / "results/cifar10/seed0/eval/predictions.csv.gz"
    assert packed.exists() and packed.stat().st_size < len(big) / 20
    assert gzip.decompress(packed.read_bytes()).decode() == big
    read = raw_records.raw_reader(target)
    assert all(read(path) == text for path, text in commit.items()) and read("results/none.json") is None
    before = packed.read_bytes()
    raw_records.write_raw(source, ["cifar10"], [0], out, {"commit": "abc"})
    assert packed.read_bytes() == before  # same results, same bytes: git sees no change

    assert raw_records.params_differ(params_text, params, "p") == []
    moved = params_text.replace("cifar10: ../shared/datasets/cifar10-jpeg.tar.gz", "cifar10: /data/c.tar.gz")
    assert moved != params_text and raw_records.params_differ(moved, params, "p") == []  # where, not what
    longer = params_text.replace("  epochs: 2 ", "  epochs: 5 ")
    assert raw_records.params_differ(longer, params, "p") == ["train.epochs"]
    with pytest.raises(Exception, match="outside"):
        read("../../etc/passwd")


def test_each_study_has_a_folder_of_its_own():
    from ablation.study.grid import study_name
    assert study_name(None, "studies/cifar10-cpu.yaml", {"model.depth": [20]}, ["-S x"]) == "cifar10-cpu"
    assert study_name("mine", "studies/cifar10-cpu.yaml", {}, []) == "mine"
    grid = {"model.depth": [20, 32], "train.learning_rate": [0.1]}
    adhoc = study_name(None, None, grid, ["train.epochs=5"])
    assert adhoc.startswith("grid-depth-learning-rate-")
    assert adhoc == study_name(None, None, dict(grid), ["train.epochs=5"])
    assert adhoc != study_name(None, None, grid, ["train.epochs=6"])  # the quick run never lands on another study
    with pytest.raises(verify.ParamsError, match="--name"):
        study_name("../reports", None, {}, [])


def test_the_report_names_the_study_not_how_it_was_run():
    from ablation.study.grid import reproducing_command
    expected = "ablate study --preset p.yaml -S train.epochs=5"
    assert reproducing_command(["--preset", "p.yaml", "--jobs", "2", "-S", "train.epochs=5"]) == expected
    assert reproducing_command(["--report-only", "--preset", "p.yaml", "--jobs=1", "-S", "train.epochs=5",
                                "--replace-report"]) == expected
    assert reproducing_command(["--preset", "p.yaml", "--until-decided", "--max-seeds", "4", "--rounds", "0",
                                "-S", "train.epochs=5"]) == expected  # a round's report reads as the study's


@pytest.mark.parametrize("edit, message", [
    (("results/cifar10/seed0/eval/metrics.json", "accuracy", 5.0), "`accuracy` is '5.0', not a number in [0, 1]"),
    (("results/cifar10/seed0/eval/metrics.json", "accuracy", 1e308), "`accuracy` is '1e+308', not a number in"),
    (("results/cifar10/seed0/eval/metrics.json", "accuracy", "0.7"), "`accuracy` is '0.7', not a number in"),
    (("results/cifar10/seed0/train.json", "diverged", None), "`diverged` is 'None', not true or false"),
    (("results/cifar10/seed0/train.json", "train_accuracy", float("nan")), "`train_accuracy` is 'nan'"),
    (("results/cifar10/seed0/eval/metrics.json", None, None), "eval/metrics.json is missing"),
])
def test_a_tampered_committed_record_is_refused_naming_its_runs_path(tmp_path, edit, message):
    import json
    import shutil

    from ablation.core import run_records
    from ablation.core.errors import DataError
    target = tmp_path / "resnet-cifar20"
    shutil.copytree(ROOT / "reports" / "cifar10-cpu" / "runs" / "resnet-cifar20", target)
    path, field, value = edit
    record = json.loads((target / path).read_text())
    if field is None:  # the file removed
        (target / path).unlink()
    else:
        if value is None:
            del record[field]
        else:
            record[field] = value
        (target / path).write_text(json.dumps(record))
    with pytest.raises(DataError) as raised:
        run_records.collect_runs(["cifar10"], [0, 1], raw_records.raw_reader(target), origin=str(target),
                               fix=f"restore it (`git checkout -- {target}`).")
    text = str(raised.value)
    assert message in text and f"{target}/{path}" in text and "git checkout --" in text


def test_a_gzip_bomb_among_raw_results_is_inflated_only_up_to_the_bound(tmp_path, monkeypatch):
    from ablation.core import reading
    from ablation.core.errors import DataError
    monkeypatch.setitem(reading.LIMITS, "record", 1024 * 1024)
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "predictions.csv.gz").write_bytes(gzip.compress(b"0" * (3 * 1024 * 1024)))
    with pytest.raises(DataError, match="inflates to over 1,048,576 bytes"):
        raw_records.raw_reader(tmp_path)("eval/predictions.csv")
    (tmp_path / "eval" / "predictions.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        raw_records.raw_reader(tmp_path)("eval/predictions.csv")


@pytest.mark.parametrize("preset, seeds", [("cifar10-cpu", 4), ("cats-vs-dogs-cpu", 2)])
def test_verify_finds_the_committed_record_of_every_arm(preset, seeds):
    from ablation.study import grid
    loaded = grid.load_preset(ROOT / "studies" / f"{preset}.yaml")
    arms = grid.arms(grid.load_study_params(ROOT / "params.yaml", loaded["set"], loaded["grid"], []))
    out = StudyFiles(preset, ROOT / "reports")
    for arm in arms:
        record = verify.committed_record(arm, out)
        assert record is not None and all(len(by_seed) == seeds for by_seed in record.runs.values()), arm.name
