"""A train, evaluate or report stage that fails, is killed or runs out of disk
leaves the previous outputs as they were; a checkpoint is resumed only by the
arm that wrote it; divergence of any form is a result. Tiny runs on a small
cats_vs_dogs folder (conftest.py's `project`)."""
import json
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ABLATE, DATASET, assert_clean_error, stage, tiny_flags

pytestmark = pytest.mark.slow  # real runs killed and resumed

RUN = Path("results") / DATASET / "seed0"
TINY = [*tiny_flags("model"), "-S", f"train.per_dataset.{DATASET}.batch_size=8"]


def outputs(root: Path) -> dict[str, bytes]:
    """Every file of the run and the arm report."""
    found = [p for top in ("results", "reports") if (root / top).exists() for p in (root / top).rglob("*")]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(found) if p.is_file()}


def checkpoints(root: Path) -> list[Path]:
    return sorted((root / ".checkpoints" / DATASET / "seed0").glob("*/backup/training_metadata.json"))


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory):
    """The small project with one tiny arm trained, evaluated and reported."""
    root = tmp_path_factory.mktemp("trained") / "project"
    subprocess.run(["cp", "-r", str(project), str(root)], check=True)
    for args in (["train", DATASET, "0", *TINY, "-S", "train.epochs=2"],
                 ["evaluate", DATASET, "0", *TINY], ["report", *TINY, "-S", "train.epochs=2"]):
        result = stage(root, *args, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture
def work(trained, tmp_path) -> Path:
    root = tmp_path / "project"
    subprocess.run(["cp", "-r", str(trained), str(root)], check=True)
    return root


def start(root: Path, name: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([ABLATE, name, *args], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def kill_after_first_checkpoint(root: Path, *args: str) -> None:
    process = start(root, *args)
    deadline = time.time() + 300
    while not checkpoints(root) and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert checkpoints(root), "the run ended before its first checkpoint"


def test_a_checkpoint_is_resumed_only_by_its_own_arm(work):
    residual = ["train", DATASET, "0", *TINY, "-S", "train.epochs=40"]
    kill_after_first_checkpoint(work, *residual)
    [residual_state] = checkpoints(work)
    plain = stage(work, "train", DATASET, "0", *TINY, "-S", "train.epochs=2", "-S", "model.residual=false", check=False)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "resuming" not in plain.stdout
    metrics = json.loads((work / RUN / "train.json").read_text())
    assert metrics["model"] == "plain_cifar8" and metrics["epochs_run_here"] == 2  # from scratch
    assert residual_state.exists()  # the residual arm's state is left for it
    # A damaged checkpoint is set aside and its arm starts over.
    weights = residual_state.parent / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    rerun = stage(work, *residual[:-2], "-S", "train.epochs=40", check=False)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stderr, rerun.stderr[-3000:]
    assert "notice: the checkpoint in" in rerun.stdout and "training starts over" in rerun.stdout
    assert json.loads((work / RUN / "train.json").read_text())["epochs_run_here"] == 40
    assert list((work / ".checkpoints" / DATASET / "seed0").glob("*.set-aside"))


def test_a_kill_in_the_first_epoch_keeps_the_previous_outputs(work):
    before = outputs(work)
    process = start(work, "train", DATASET, "0", *TINY, "-S", "train.epochs=40", "-S", "model.residual=false")
    for line in process.stdout:
        if line.startswith("estimated training time"):  # two steps into the first epoch
            break
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert outputs(work) == before
    assert stage(work, "report", *TINY, "-S", "train.epochs=2", check=False).returncode == 0


def test_a_full_disk_while_saving_keeps_the_previous_outputs(work):
    before = outputs(work)

    def small_disk():  # files past 64 KB fail with EFBIG, as on a full disk (the model is ~1 MB)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    result = subprocess.run([ABLATE, "train", DATASET, "0", *TINY, "-S", "train.epochs=1",
                             "-S", "model.residual=false"], cwd=work, capture_output=True, text=True,
                            preexec_fn=small_disk)
    assert_clean_error(result, "cannot write")
    assert "the previous outputs are kept" in result.stderr
    assert outputs(work) == before
    assert not list((work / RUN).rglob(".*partial*"))


def test_a_read_only_run_directory_keeps_the_previous_outputs(work):
    run_dir = work / RUN
    if subprocess.run(["chattr", "+i", str(run_dir)], capture_output=True).returncode:
        pytest.skip("chattr +i (an immutable directory, read-only even for root) is not supported here")
    try:
        before = outputs(work)
        result = stage(work, "train", DATASET, "0", *TINY, "-S", "train.epochs=1", check=False)
    finally:
        subprocess.run(["chattr", "-i", str(run_dir)], check=True)
    assert_clean_error(result, "cannot write")
    assert "make the project writable" in result.stderr
    assert outputs(work) == before


def test_the_report_refuses_runs_without_logs(work):
    for tsv in (work / RUN / "live").rglob("*.tsv"):
        tsv.unlink()
    before = outputs(work)
    assert_clean_error(stage(work, "report", *TINY, "-S", "train.epochs=2", check=False), "missing or empty")
    assert outputs(work) == before


@pytest.mark.parametrize("damage, args, fragment", [
    (lambda root: (root / RUN / "model.keras").write_bytes((root / RUN / "model.keras").read_bytes()[:5000]),
     ["evaluate", DATASET, "0"], "model.keras cannot be loaded"),
    (lambda root: (root / RUN / "train.json").write_text('{"model": "resnet_'),
     ["report", "-S", "train.epochs=2"], "train.json is not valid JSON"),
    (lambda root: (root / RUN / "eval" / "metrics.json").write_text('{"accuracy": 0.'),
     ["report", "-S", "train.epochs=2"], "metrics.json is not valid JSON"),
], ids=["truncated model.keras", "truncated train.json", "truncated eval metrics"])
def test_damaged_run_files_are_one_line_errors(work, damage, args, fragment):
    damage(work)
    before = outputs(work)
    assert_clean_error(stage(work, *args, *TINY, check=False), fragment)
    assert outputs(work) == before


def test_divergence_far_above_the_starting_loss_is_a_result(work):
    result = stage(work, "train", DATASET, "0", *TINY, "-S", "train.epochs=3",
                   "-S", f"train.per_dataset.{DATASET}.learning_rate=50", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((work / RUN / "train.json").read_text())
    assert metrics["diverged"] is True, metrics
    assert "starting loss" in metrics["divergence"] or "non-finite" in metrics["divergence"], metrics
    assert stage(work, "evaluate", DATASET, "0", *TINY, check=False).returncode == 0
    assert stage(work, "report", *TINY, "-S", "train.epochs=3", check=False).returncode == 0
    summary = json.loads((work / "reports" / "metrics.json").read_text())[DATASET]
    assert summary["diverged_runs"] == 1 and summary["runs"] == 1 and summary["test_accuracy"] is None


def test_report_only_without_experiments_keeps_the_committed_report(work):
    report = work / "reports" / "committed" / "study.md"
    report.parent.mkdir(parents=True)
    report.write_text("# Study\n\n| arm | dataset | test accuracy |\n|---|---|---|\n"
                      "| resnet-cifar20 | cifar10 | 0.9 |\n")
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(command, cwd=work, check=True, capture_output=True)
    before = outputs(work)
    assert_clean_error(stage(work, "study", "--report-only", "--name", "committed", check=False),
                       "no arm of the study left results")
    assert outputs(work) == before and not (report.parent / "figures").exists()
