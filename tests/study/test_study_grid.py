"""Any grid makes distinct, readable arms; every committed study preset loads,
names distinct arms, builds each arm's network and trains it a step; --dry-run
lists the experiments and queues nothing."""
import dataclasses
import re
import subprocess
import sys

import numpy as np
import pytest

from ablation.core import layout
from ablation.core.params import ParamsError
from ablation.nets import models
from ablation.study import dry_run
from ablation.study import grid as study_grid
from ablation.study.engines import dvc_queue
from ablation.training.recipe import make_optimizer, model_for
from tests.conftest import ABLATE, ROOT

PRESETS = sorted((ROOT / "studies").glob("*.yaml"))
CIFAR20 = ["model.arch=resnet_cifar", "datasets=[cifar10]"]


def names(grid: dict, overrides=CIFAR20) -> list[str]:
    params = study_grid.load_study_params(ROOT / "params.yaml", overrides, grid, [])
    return [arm.name for arm in study_grid.arms(params)]


def test_a_grid_over_any_key_gives_distinct_readable_names():
    assert names({"model.depth": [20], "model.shortcut": ["A", "B", "C"]}) == [
        "resnet-cifar20-shortcutA", "resnet-cifar20-shortcutB", "resnet-cifar20-shortcutC"]
    assert names({"model.depth": [20], "train.learning_rate": [0.1, 0.01]}) == [
        "resnet-cifar20-lr0.1", "resnet-cifar20-lr0.01"]
    assert names({"model.depth": [20], "model.shortcut": ["A", "B"], "model.residual": [True, False]}) == [
        "resnet-cifar20-shortcutA", "plain-cifar20-shortcutA", "resnet-cifar20-shortcutB", "plain-cifar20-shortcutB"]
    assert names({"model.depth": [110], "model.residual": [False], "model.unit": ["full_preactivation"]}) == [
        "plain-cifar110-full-preactivation"]
    assert names({"model.depth": [20], "train.jit_compile": [True, False], "data.augment.cifar10": ["none"]}) == [
        "resnet-cifar20-jit-compile-augment-none", "resnet-cifar20-no-jit-compile-augment-none"]


def test_two_grid_points_with_one_name_are_refused_naming_both():
    with pytest.raises(ParamsError, match=r"model.weight_decay=0.0001 and .*model.weight_decay=0.0001 both make "
                                          r"the experiment name 'resnet-cifar20-wd0.0001'"):
        names({"model.depth": [20], "model.weight_decay": [0.0001, 1e-4]})


def test_subgrids_run_the_union_of_their_products():
    grid = [{"model.depth": [110], "model.block": ["basic"]}, {"model.depth": [164], "model.block": ["bottleneck"]}]
    assert names(grid) == ["resnet-cifar110-basic", "resnet-cifar164-bottleneck"]


@pytest.fixture(scope="module")
def preset_arms():
    out = {}
    for path in PRESETS:
        preset = study_grid.load_preset(path)
        params = study_grid.load_study_params(ROOT / "params.yaml", preset["set"], preset["grid"], [])
        out[path.stem] = study_grid.arms(params)
    return out


def test_every_preset_names_distinct_arms(preset_arms):
    assert {"cifar10-cpu", "quick-cpu", "he2015-table6", "he2015-shortcuts", "he2016-table1", "he2016-table2",
            "seed-vgg", "seed-cats-vs-dogs", "cats-vs-dogs-cpu"} <= set(preset_arms)
    for name, arms in preset_arms.items():
        assert len({arm.name for arm in arms}) == len(arms) > 1, name
    assert len(preset_arms["he2015-table6"]) == 10 and len(preset_arms["he2016-table2"]) == 10


@pytest.mark.slow  # trains a probe or a step of every arm
@pytest.mark.parametrize("preset", [path.stem for path in PRESETS])
def test_every_preset_builds_each_arm_and_trains_its_first_a_step(preset_arms, preset):
    """Each arm's network built for each of its datasets (dry_run.arm_seconds builds
    them), with an estimate; the first arm compiled with its recipe and trained one
    step on a few images at its image size."""
    import keras
    for arm in preset_arms[preset]:
        seconds, parts = dry_run.arm_seconds(arm, rate=1e12)
        assert seconds is None or seconds > 0, arm.name
        assert len(parts) == len(arm.params.datasets)
    first = preset_arms[preset][0]
    run = first.params.for_dataset(first.params.datasets[0])
    net = models.build_model(model_for(run.train, run.model), (run.image_size, run.image_size, 3), 2)
    # Eagerly: tracing the step of a 164-layer net takes longer than the step (graph mode: the pipeline tests).
    net.compile(optimizer=make_optimizer(run.train, 1, run.model.weight_decay), loss="sparse_categorical_crossentropy",
                run_eagerly=True)
    loss = net.train_on_batch(np.zeros((2, run.image_size, run.image_size, 3), "float32"), np.array([0, 1]))
    assert np.isfinite(loss)
    keras.backend.clear_session()


@pytest.mark.slow  # trains a probe or a step of every arm
def test_dry_run_lists_every_experiment_and_queues_nothing():
    refs = ["git", "for-each-ref", "refs/exps"]
    before = subprocess.run(refs, cwd=ROOT, capture_output=True, text=True).stdout
    out = subprocess.run([ABLATE, "study", "--preset", "studies/quick-cpu.yaml", "--dry-run",
                          "--grid", "model.weight_decay=0.0001,0.0005"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    listed = [line.split()[0] for line in lines if line.startswith(("resnet-", "plain-"))]
    assert listed == [f"{family}-cifar{depth}-wd{wd}" for depth in (20, 32) for family in ("resnet", "plain")
                      for wd in ("0.0001", "0.0005")]
    assert "plain-cifar32-wd0.0005  model.depth=32 model.residual=false model.weight_decay=0.0005  ~" in out.stdout
    # data.limit caps each split after the fractions, as the split stage does: 2,000 of
    # CIFAR-10's 45,000 and of the cats_vs_dogs sample's 2,880 training images
    assert "cifar10: 1 seed(s) x 5 epochs x 2,000 images" in out.stdout
    assert "cats_vs_dogs: 1 seed(s) x 5 epochs x 2,000 images" in out.stdout
    from ablation.core import machine, precision
    here = precision.resolve("auto", machine.describe("tensorflow", 1))
    assert f"precision on this machine: auto -> {here}" in out.stdout  # the probe ran in it too
    # each experiment: 2 datasets x (fetch, split) + 2 runs x (train, evaluate) + report
    assert re.search(r"plain-cifar20-wd0.0001 .* ~[0-9.]+ min \(9 stages ~[0-9.]+ min of it\)", out.stdout)
    assert re.fullmatch(r"8 experiment\(s\), nothing queued; ~[0-9.]+ (min|h) in all with 1 queue worker\(s\): "
                        r"training at .* plus \d+ s per stage process \((measured on|one stage's start-up).*\)",
                        lines[-1]), lines[-1]
    assert subprocess.run(refs, cwd=ROOT, capture_output=True, text=True).stdout == before


def test_dry_run_counts_the_images_of_the_folder_it_will_read(tmp_path):
    """Before a fetch, the training images come from the folder's own files: 30 per
    class without a test split, so 20% is held out for test and 10% of the rest for
    validation, as the split stage does."""
    from PIL import Image
    for label in ("a", "b"):
        (tmp_path / "mine" / label).mkdir(parents=True)
        for i in range(30):
            Image.new("RGB", (4, 4)).save(tmp_path / "mine" / label / f"{i}.png")
    mine = ["datasets=[mine]", "data.source=folder", f"data.paths.mine={tmp_path / 'mine'}",
            "data.image_size.mine=32", "data.augment.mine=none"]
    params = study_grid.load_study_params(ROOT / "params.yaml", mine, {}, [])
    run = params.for_dataset("mine")
    assert dry_run.train_images(run) == round(60 * 0.8 * 0.9)
    assert dry_run.train_images(dataclasses.replace(run, limit=10)) == 10


@pytest.mark.slow  # trains a probe or a step of every arm
def test_the_gpu_sized_course_preset_dry_runs_on_a_cpu():
    out = subprocess.run([ABLATE, "study", "--preset", "studies/seed-cats-vs-dogs.yaml",
                          "--dry-run"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith(("resnet", "plain"))]
    assert listed == ["resnet34", "plain34", "resnet50", "plain50"]
    assert "cats_vs_dogs: 3 seed(s) x 20 epochs x " in out.stdout
    assert out.stdout.splitlines()[-1].startswith("4 experiment(s), nothing queued; ~")


@pytest.mark.slow  # trains a probe or a step of every arm
def test_dry_run_of_a_study_with_committed_results_says_how_many_seeds_decide_it():
    out = subprocess.run([ABLATE, "study", "--preset", "studies/cifar10-cpu.yaml", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "How to decide, cifar10 (from the committed results):" in out.stdout
    assert "| (b) test error, residual-20 minus plain-20 " in out.stdout
    # The committed study was extended until decided; an undecided one's command: test_reporting.py
    assert "Every primary contrast is decided at these seeds." in out.stdout
    assert "--until-decided --max-seeds" not in out.stdout


@pytest.mark.parametrize("flags, message", [
    ([], "--until-decided needs a seed budget. Fix: pass --max-seeds N"),
    (["--max-seeds", "1"], "--max-seeds 1 is no more than the 1 seed(s) each arm runs first. Fix: pass --max-seeds 2"),
    (["--max-seeds", "3", "--seed-step", "0"], "--until-decided runs seeds in rounds, with --seed-step 1 or more"),
])
def test_until_decided_is_refused_before_anything_runs_without_a_budget(flags, message):
    refs = ["git", "for-each-ref", "refs/exps"]
    before = subprocess.run(refs, cwd=ROOT, capture_output=True, text=True).stdout
    out = subprocess.run([ABLATE, "study", "--preset", "studies/quick-cpu.yaml", "--until-decided",
                          *flags], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert subprocess.run(refs, cwd=ROOT, capture_output=True, text=True).stdout == before


def test_a_study_never_replaces_another_studys_folder_or_its_name_a_pipeline_output(tmp_path):
    from ablation.core.layout import StudyFiles
    from ablation.study import raw_records
    out = StudyFiles("mine", tmp_path)
    out.dir.mkdir()
    out.report.write_text("# Study: an earlier one\n")
    out.metrics.write_text('{"resnet-cifar20": {"cifar10": {"test_accuracy": 0.7}}}\n')
    ours = {"set": ["train.epochs=5"], "arms": {"resnet-cifar20": ["model.depth=20"]}}
    raw_records.check_owner(out, ours, replace=False)  # a folder from before study.json: its metrics' arms match
    with pytest.raises(ParamsError, match="holds another study \\(arms resnet-cifar20\\), not this one"):
        raw_records.check_owner(out, {"set": [], "arms": {"resnet-cifar8": []}}, replace=False)
    raw_records.record_owner(out, ours)
    raw_records.check_owner(out, ours, replace=False)
    with pytest.raises(ParamsError, match="-S train.epochs=6\\).*--replace-report"):
        raw_records.check_owner(out, {**ours, "set": ["train.epochs=6"]}, replace=False)
    raw_records.check_owner(out, {**ours, "set": ["train.epochs=6"]}, replace=True)
    more_seeds = study_grid.arms(study_grid.load_study_params(ROOT / "params.yaml", CIFAR20, {"model.depth": [20]}, []))
    assert raw_records.definition(more_seeds, ["train.seeds=[0,1,2]", "train.epochs=5"]) \
        == {"set": ["train.epochs=5"], "arms": {"resnet-cifar20": ["model.depth=20"]}}  # more seeds: the same study
    assert "figures" in layout.pipeline_report_outputs(ROOT / "dvc.yaml")
    with pytest.raises(ParamsError, match="an output of the pipeline's report stage"):
        study_grid.study_name("figures", None, {}, [])


def test_the_committed_study_cannot_be_overwritten_by_another_grid_of_its_name():
    folder = ROOT / "reports" / "cifar10-cpu"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    out = subprocess.run([ABLATE, "study", "--name", "cifar10-cpu",
                          "-S", "model.arch=resnet_cifar", "--grid", "model.residual=true,false",
                          "--grid", "model.depth=8", "-S", "train.seeds=[0,1]",
                          "--report-only"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "reports/cifar10-cpu holds another study" in out.stderr, out.stderr[-2000:]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_an_experiment_of_another_study_with_the_same_name_is_never_removed(monkeypatch):
    arm = study_grid.arms(study_grid.load_study_params(ROOT / "params.yaml", CIFAR20, {"model.depth": [20]}, []))[0]
    other = (ROOT / "params.yaml").read_text().replace("seeds: [0]", "seeds: [5, 6]")
    called = []
    monkeypatch.setattr(dvc_queue, "check_repository", lambda: None)
    monkeypatch.setattr(dvc_queue, "busy_queue", lambda: [])
    monkeypatch.setattr(dvc_queue, "experiment_commits", lambda: {arm.name: "abc1234"})
    monkeypatch.setattr(dvc_queue, "read_file", lambda commit, path: other)
    monkeypatch.setattr(dvc_queue, "dvc", lambda *args, **kw: called.append(args))
    with pytest.raises(ParamsError, match=f"experiment {arm.name} already exists and ran with other params"):
        dvc_queue.queue([arm], [], jobs=1)
    assert called == []  # nothing removed, nothing queued


def _copy_without_git(tmp_path):
    import shutil
    for name in ("ablation", "studies", "params.yaml", "dvc.yaml", "reports/cifar10-cpu"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    return tmp_path


def test_outside_a_git_repository_report_only_works_and_a_run_is_one_line(tmp_path):
    """A copy of the project (`git archive`, a tarball): the committed report regenerates
    byte for byte, with HOME unusable and untouched; a run says what it needs."""
    root = _copy_without_git(tmp_path / "copy")
    home = tmp_path / "home"
    home.mkdir()
    before = (root / "reports" / "cifar10-cpu" / "study.md").read_bytes()
    env = {**__import__("os").environ, "HOME": str(home)}
    report_only = [ABLATE, "study", "--preset", "studies/cifar10-cpu.yaml", "--report-only"]
    done = subprocess.run(report_only, cwd=root, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (root / "reports" / "cifar10-cpu" / "study.md").read_bytes() == before
    # The terminal gets the headline (title, the claims' verdicts) and the paths, not the whole report.
    assert "# Study: what the residual connection buys" in done.stdout and "- cifar10: **(a) degradation" in done.stdout
    assert "## Decision rule" not in done.stdout and "wrote reports/cifar10-cpu/study.md" in done.stdout
    assert list(home.iterdir()) == []  # Keras, matplotlib and DVC wrote into the project's .cache/
    run = subprocess.run([ABLATE, "study", "--name", "fresh", "-S", "model.arch=resnet_cifar",
                          "--grid", "model.depth=8"], cwd=root, capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "not a git repository" in run.stderr


def test_a_preset_that_is_a_folder_is_one_line():
    out = subprocess.run([ABLATE, "study", "--preset", "studies", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "study preset studies is a folder" in out.stderr and "Traceback" not in out.stderr


def test_a_misspelt_preset_is_named_with_the_presets_there_are():
    out = subprocess.run([ABLATE, "study", "--preset", "studies/cifar10-cpus.yaml", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "Fix: pass studies/cifar10-cpu.yaml (did you mean it?), or one of studies/cats-vs-dogs-cpu.yaml, " \
        in out.stderr


def test_help_keeps_one_example_per_line():
    out = subprocess.run([ABLATE, "study", "--help"], cwd=ROOT, capture_output=True, text=True)
    examples = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("ablate study")]
    assert len(examples) >= 8 and all(line.count("ablate study") == 1 for line in examples)


def test_a_huge_grid_is_refused_before_any_arm_is_built():
    grid = {"model.depth": [8, 14, 20, 26, 32, 38, 44, 50, 56, 62], "model.residual": [True, False],
            "train.learning_rate": [0.01 * i for i in range(1, 11)], "train.epochs": list(range(1, 11)),
            "train.batch_size": [16, 32, 64, 128, 256], "model.weight_decay": [0.0001 * i for i in range(1, 21)]}
    params = study_grid.load_study_params(ROOT / "params.yaml", CIFAR20, grid, [])
    with pytest.raises(ParamsError, match="the grid makes 200,000 arms, more than --max-arms 256"):
        study_grid.arms(params)
    two = study_grid.load_study_params(ROOT / "params.yaml", CIFAR20, {"model.depth": [20, 32]}, [])
    assert len(study_grid.arms(two, max_arms=2)) == 2


def test_a_damaged_dvc_lock_stops_a_study_in_one_line(project_copy):
    root = project_copy
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: [unclosed\n")
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "CI"], [sys.executable, "-m", "dvc", "init", "-q"],
                    ["git", "add", "-A"], ["git", "commit", "-qm", "damaged lock"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    out = subprocess.run([ABLATE, "study", "--name", "locked", "-S", "model.arch=resnet_cifar",
                          "-S", "datasets=[cifar10]", "--grid", "model.depth=8"], cwd=root, capture_output=True,
                         text=True, timeout=300)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert len(errors) == 1 and "git checkout -- dvc.lock" in errors[0]
