"""The pipeline as users run it: stage scripts, `dvc repro`, `dvc exp run`, the study,
resume after a kill, determinism and the distributed path. Tiny settings on the
real archives in ../shared/datasets/."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ABLATE, ROOT, TINY, read_json, require_shared, set_params, sh, stage

pytestmark = pytest.mark.slow  # the pipeline end to end


def test_describe_prints_the_arm_and_rejects_bad_params(project_copy):
    out = stage(project_copy, "describe", "-S", "model.arch=resnet_cifar", "-S", "model.depth=20",
                "-S", "model.shortcut=A", "-S", "model.residual=false").stdout
    cifar_row = next(line for line in out.splitlines() if line.startswith("| cifar10"))
    assert "plain_cifar20" in cifar_row and "269,722" in cifar_row and "|                20 |" in cifar_row
    bad = stage(project_copy, "describe", "-S", "model.depth=33", check=False)
    assert bad.returncode == 2 and "`model.depth` is 33" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A project copy with both datasets fetched and split (tiny limit)."""
    require_shared()
    root = tmp_path_factory.mktemp("prepared")
    for name in ("ablation", "dvc.yaml", "params.yaml"):
        sh(ROOT, "cp", "-r", str(ROOT / name), str(root / name))
    set_params(root, {**TINY, "datasets": ["cifar10"], "train": {**TINY["train"], "epochs": 3}})
    stage(root, "fetch", "cifar10")
    stage(root, "split", "cifar10")
    return root


def train_metrics(root: Path) -> dict:
    metrics = read_json(root / "results" / "cifar10" / "seed0" / "train.json")
    return {k: v for k, v in metrics.items() if k not in ("train_seconds", "validation_seconds", "images_per_second",
                                                        "epochs_run_here")}


def test_training_is_deterministic_and_resumes_after_a_kill(prepared):
    first = stage(prepared, "train", "cifar10", "0")
    log = first.stdout + first.stderr
    assert "estimated training time:" in first.stdout  # timed from the first real steps
    assert "ran out of data" not in log and "shuffle=True" not in log  # Keras warnings gone at their cause
    reference = train_metrics(prepared)
    stage(prepared, "train", "cifar10", "0")
    assert train_metrics(prepared) == reference  # same seed, same metrics on the CPU

    (prepared / "results" / "cifar10" / "seed0" / "train.json").unlink()
    process = subprocess.Popen([ABLATE, "train", "cifar10", "0"], cwd=prepared,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    states = prepared / ".checkpoints" / "cifar10" / "seed0"
    deadline = time.time() + 300
    while not list(states.glob("*/backup/training_metadata.json")) and time.time() < deadline \
            and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    [metadata] = states.glob("*/backup/training_metadata.json")
    finished = read_json(metadata)["epoch"]
    assert 1 <= finished < 3, "the kill should land after the first epoch's checkpoint"

    rerun = stage(prepared, "train", "cifar10", "0").stdout
    assert f"resuming from the checkpoint after epoch {finished}" in rerun
    assert read_json(prepared / "results" / "cifar10" / "seed0" / "train.json")["epochs_run_here"] == 3 - finished
    assert train_metrics(prepared) == reference
    assert not list(states.iterdir())  # the checkpoint is removed once the outputs are written


def test_divergence_is_a_result_not_a_crash(prepared):
    out = stage(prepared, "train", "cifar10", "0", "-S", "train.learning_rate=1e12", "-S", "train.epochs=2").stdout
    assert "diverged True" in out
    metrics = read_json(prepared / "results" / "cifar10" / "seed0" / "train.json")
    assert metrics["diverged"] is True and metrics["divergence"] and metrics["epochs_run_here"] == 1  # stopped
    stage(prepared, "evaluate", "cifar10", "0")
    evaluation = read_json(prepared / "results" / "cifar10" / "seed0" / "eval" / "metrics.json")
    assert evaluation["test_examples"] > 0


def test_mirrored_strategy_on_two_logical_cpus(prepared):
    code = ("import tensorflow as tf\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
            "from ablation.cli.main import main\n"
            "main(['train', 'cifar10', '0', '-S', 'train.distribute=mirrored', '-S', 'train.epochs=1'])\n")
    out = sh(prepared, sys.executable, "-c", code).stdout
    assert "training on 2 replica(s) (MirroredStrategy), global batch 32" in out
    metrics = read_json(prepared / "results" / "cifar10" / "seed0" / "train.json")
    assert metrics["diverged"] is False and 0 < metrics["train_loss"] < 10


def test_dvc_repro_exp_run_metrics_diff_and_study(project_copy):
    require_shared()
    root = project_copy
    set_params(root, TINY)
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "ci@example.com")
    sh(root, "git", "config", "user.name", "CI")
    sh(root, "dvc", "init", "-q")
    shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")  # the plots' templates
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "project")

    sh(root, "dvc", "repro")
    summary = read_json(root / "reports" / "metrics.json")
    assert set(summary) == {"cifar10", "cats_vs_dogs"}
    assert all(0 <= m["test_accuracy"] <= 1 and m["trainable_params"] > 0 for m in summary.values())
    report = (root / "reports" / "report.md").read_text()
    assert "# Arm report: resnet_cifar8" in report and "Against the paper" not in report  # depth 8 is no paper row
    with Image.open(root / "reports" / "figures" / "cifar10_curves.png") as figure:
        assert figure.width > 500
    shown = json.dumps(json.loads(sh(root, "dvc", "metrics", "show", "--json").stdout))
    assert "reports/metrics.json" in shown and "data/fetched/cifar10.metrics.json" not in shown  # headline only
    assert read_json(root / "data" / "fetched" / "cats_vs_dogs.metrics.json") == {"examples": {"train": 4000},
                                                                                   "skipped": 0, "ignored": 0}
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "residual arm")

    out = sh(root, "dvc", "exp", "run", "-n", "plain8", "-S", "model.residual=false").stdout
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    assert ran and all(name.split("@")[0] in ("train", "evaluate", "report") for name in ran), ran
    assert {"train@cifar10-0", "train@cats_vs_dogs-0", "report"} <= set(ran)
    diff = sh(root, "dvc", "metrics", "diff", "HEAD", "plain8", "--targets", "reports/metrics.json").stdout
    assert "cifar10.test_accuracy" in diff and "cats_vs_dogs.test_accuracy" in diff
    plots = json.loads(sh(root, "dvc", "plots", "diff", "HEAD", "plain8", "--json").stdout)["data"]
    for name in ("loss/cifar10.csv", "accuracy/cats_vs_dogs.csv", "confusion/cifar10.csv"):
        rendered = plots[f"reports/plots/{name}"]
        assert rendered and len(rendered[0]["revisions"]) == 2, name  # both arms drawn in one plot

    committed = root / "reports" / "cifar10-cpu" / "study.md"  # another study's record
    committed.parent.mkdir()
    committed.write_text("| arm | dataset | test accuracy |\n|--|--|--|\n| resnet-cifar20 | cifar10 | 0.7 |\n")
    # One dataset (the 4,000-image sample) keeps the forced rerun of --verify below short.
    out = stage(root, "study", "-S", "datasets=[cats_vs_dogs]").stdout
    assert committed.read_text().endswith("| 0.7 |\n") and len(list(committed.parent.iterdir())) == 1
    name = out.split("study ", 1)[1].split(" ", 1)[0]  # "study NAME (reports/NAME/), arms: ..."
    folder = root / "reports" / name
    assert name.startswith("grid-residual-")  # an ad-hoc grid gets a folder of its own
    study = (folder / "study.md").read_text()
    assert "| resnet-cifar8 " in study and "| plain-cifar8 " in study
    assert "## Accuracy gained by the residual connection" in study and "| one seed: no test |" in study
    assert "### Degradation (the paper's Fig. 6)" in study and "### Layer responses (the paper's Fig. 7)" in study
    assert "### Effect of each grid key" in study and "#### model.residual" in study  # any key's effect section
    for figure_name in ("accuracy_vs_depth", "degradation", "layer_responses", "effect_model_residual"):
        with Image.open(folder / "figures" / f"cats_vs_dogs_{figure_name}.png") as figure:
            assert figure.height > 200, figure_name
    shown = sh(root, "dvc", "exp", "show", "--csv").stdout
    assert "resnet-cifar8" in shown and "plain-cifar8" in shown

    # The raw results, committed: a clone without experiments regenerates the report byte for byte.
    raw = folder / "runs" / "plain-cifar8"
    assert read_json(raw / "experiment.json")["arm"] == "plain-cifar8"
    machine = read_json(raw / "results" / "cats_vs_dogs" / "seed0" / "train.json")["machine"]
    assert machine["cores"] == os.cpu_count() and machine["versions"]["keras"] and machine["backend"] == "tensorflow"
    assert (raw / "results" / "cats_vs_dogs" / "seed0" / "eval" / "predictions.csv").exists()
    assert f"Ran on: `{machine['cpu']}" in study
    written = {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file() and "runs" not in
               path.relative_to(folder).parts}
    assert len(written) >= 9  # study.md, 4 figures, metrics.json, dvc.yaml, 2 plots
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "the study's results")
    sh(root, "dvc", "exp", "remove", "--all-commits")
    assert "plain-cifar8" not in sh(root, "git", "for-each-ref", "refs/exps").stdout  # a clone: no experiments
    for path in written:
        path.unlink()
    again = stage(root, "study", "-S", "datasets=[cats_vs_dogs]", "--report-only")
    assert "raw results:" not in again.stdout  # read from the committed runs/, none rewritten
    assert {path: path.read_bytes() for path in written if path.exists()} == written
    metrics = json.loads(sh(root, "dvc", "metrics", "show", "--json").stdout)
    arms = next(iter(metrics.values()))["data"][f"reports/{name}/metrics.json"]["data"]
    assert set(arms) == {"resnet-cifar8", "plain-cifar8"} and "test_accuracy" in arms["plain-cifar8"]["cats_vs_dogs"]
    plots = json.loads(sh(root, "dvc", "plots", "show", "--json").stdout)["data"]
    drawn = plots[f"reports/{name}/plots/training_error/cats_vs_dogs.csv"][0]["content"]["data"]["values"]
    assert {point["field"] for point in drawn} == {"resnet-cifar8", "plain-cifar8"}  # one line per arm

    # A rerun of one committed run, on the same machine: identical to the record.
    verified = stage(root, "study", "-S", "datasets=[cats_vs_dogs]", "--verify", "plain-cifar8")
    assert "plain-cifar8 seed 0 on cats_vs_dogs: identical to the record" in verified.stdout
    took = next(line for line in verified.stdout.splitlines() if "training took" in line)
    recorded, rerun = took.split("training took ")[1].split(" s, rerun ")
    assert recorded != rerun.removesuffix(" s"), took  # trained again, not restored from DVC's cache

    # Seeds in rounds: with one seed nothing can be tested, so each arm gets its second seed as an
    # experiment of its own, its raw results are written, and the report counts both seeds. With
    # --rounds 0 nothing runs yet: the report of the rounds so far, and the same command goes on.
    paused = stage(root, "study", "-S", "datasets=[cats_vs_dogs]", "--until-decided", "--max-seeds", "2",
                   "--rounds", "0")
    assert "decided at 1 seeds per arm (budget 2, looks at [1, 2]); stopping after 0 round(s)" in paused.stdout
    assert read_json(folder / "study.json")["looks"] == [1, 2] and not (folder / "runs" / "plain-cifar8-s1").exists()
    grown = stage(root, "study", "-S", "datasets=[cats_vs_dogs]", "--until-decided", "--max-seeds", "2")
    assert "until decided: 0 primary contrast(s) decided at 1 seeds per arm (budget 2, looks at [1, 2]); " \
           "adding seeds up to 2 to resnet-cifar8, plain-cifar8" in grown.stdout
    assert "round: 2 run(s), all on this machine in one seed block: " in grown.stdout  # a round is one block
    assert read_json(folder / "runs" / "plain-cifar8-s1" / "experiment.json")["arm"] == "plain-cifar8"
    assert "0 primary contrast(s) decided at 2 seeds per arm" in grown.stdout and "; done" in grown.stdout
    grown_study = (folder / "study.md").read_text()
    assert "| plain-cifar8 " in grown_study and "(n=2)" in grown_study and "| plain-cifar8-s1 " not in grown_study


def _experiments(root: Path) -> set[str]:
    """The study's finished experiments (DVC's queue keeps temporary refs beside them)."""
    refs = sh(root, "git", "for-each-ref", "--format=%(refname)", "refs/exps").stdout.split()
    return {ref.rsplit("/", 1)[-1] for ref in refs} & {"resnet-cifar8", "plain-cifar8"}


def test_a_killed_study_resumes_on_dvc_s_queue_without_retraining(project_copy):
    """kill -9 of the study driver after its first arm: the queue it started runs on;
    --resume while it does is refused in one line, and once it is done --resume keeps
    both finished arms and trains nothing."""
    require_shared()
    root = project_copy
    set_params(root, {**TINY, "datasets": ["cats_vs_dogs"]})
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "CI"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                    ["git", "commit", "-qm", "project"]):
        sh(root, *command)
    driver = subprocess.Popen([ABLATE, "study", "--name", "killed"], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    while not _experiments(root) and time.time() < deadline:
        time.sleep(2)
    first = _experiments(root)
    assert len(first) == 1, first
    driver.kill()  # kill -9: the queue's workers are not its children to take down
    driver.wait()
    refused = stage(root, "study", "--name", "killed", "--resume", check=False)
    if _experiments(root) != {"resnet-cifar8", "plain-cifar8"}:  # the orphaned queue still ran the second arm
        assert refused.returncode == 2 and "DVC's queue still has" in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr and _experiments(root) >= first
    while _experiments(root) != {"resnet-cifar8", "plain-cifar8"} and time.time() < deadline:
        time.sleep(2)
    idle = [sys.executable, "-c", "from ablation.study.repo import busy_queue; print(busy_queue())"]
    while sh(root, *idle).stdout.strip() != "[]" and time.time() < deadline:  # the workers' last clean-up
        time.sleep(2)
    commits = sh(root, "git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout
    resumed = stage(root, "study", "--name", "killed", "--resume")
    assert "resume: 2 of 2 arm(s) have results; running none" in resumed.stdout
    assert "$ dvc exp run" not in resumed.stdout and "$ dvc exp remove" not in resumed.stdout
    assert sh(root, "git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout == commits
    assert "| plain-cifar8 " in (root / "reports" / "killed" / "study.md").read_text()
