"""What the terminal shows: start-up noise moved to a log, and a study's progress."""
import os
import sys
import threading
import time

from ablation.core import console

# Lines TensorFlow 2.21 and DVC 3 printed on this project's commands.
TF_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796575028.120901    5195 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.\n",
    "I0000 00:00:1796575028.172890    5195 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.\n",
]
DVC_LINES = ["No file hash info found for 'results/cifar10/seed0/live'. It won't be created.\n",
             "Queueing with overrides '{'params.yaml': ['model.depth=56', 'model.residual=true']}'.\n"]
KEPT = ["W0000 00:00:1796575028.1 5195 gpu.cc:10] no GPU found\n", "error: data path x does not exist. Fix: ...\n",
        "Running stage 'train@cifar10-0':\n", "Queued experiment 'resnet-cifar56' for future execution.\n"]


def test_only_the_known_noise_is_filtered(monkeypatch):
    monkeypatch.delenv("ABLATION_VERBOSE", raising=False)
    assert all(console.is_noise(line) for line in [*TF_LINES, *DVC_LINES])
    assert not any(console.is_noise(line) for line in KEPT)  # warnings, errors and DVC's own steps stay
    monkeypatch.setenv("ABLATION_VERBOSE", "1")
    assert not console.is_noise(TF_LINES[1])


def test_noise_written_to_the_file_descriptor_goes_to_the_log(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("ABLATION_VERBOSE", raising=False)
    monkeypatch.setattr(console, "NOISE_LOG", tmp_path / "logs" / "noise.log")
    with console.quiet_stderr():
        os.write(2, "".join([TF_LINES[0], KEPT[0], TF_LINES[1]]).encode())  # as C++ code writes it
    assert capfd.readouterr().err == KEPT[0]
    assert (tmp_path / "logs" / "noise.log").read_text() == TF_LINES[0] + TF_LINES[1]


def test_a_command_s_output_streams_without_its_noise(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ABLATION_VERBOSE", raising=False)
    monkeypatch.setattr(console, "NOISE_LOG", tmp_path / "noise.log")
    script = (f"import sys; sys.stderr.write({DVC_LINES[0]!r}); sys.stderr.flush(); print('Queued experiment x'); "
              "sys.exit(3)")
    assert console.run_filtered([sys.executable, "-c", script]) == 3
    assert capsys.readouterr().out == "Queued experiment x\n"
    assert (tmp_path / "noise.log").read_text() == DVC_LINES[0]


def test_progress_line_counts_runs_and_extrapolates_the_measured_rate():
    assert console.progress_line(0, 2, 0, 2, 120) == ("study progress: 0 done, 2 running, 0 failed, 2 queued; "
                                                      "2.0 min elapsed; ETA once the first run finishes")
    # 2 of 6 done in 10 min: 4 left at 5 min each
    assert console.progress_line(2, 2, 0, 2, 600).endswith("10.0 min elapsed; ETA 20.0 min at the rate so far")
    assert console.progress_line(3, 0, 1, 0, 600).endswith("10.0 min elapsed")


def test_queue_progress_prints_while_the_queue_runs(capsys):
    states = {"a": "Success", "b": "Running"}  # c: not queued yet
    with console.queue_progress(["a", "b", "c"], lambda: states, every=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("study progress: 1 done, 1 running, 0 failed, 1 queued") for line in lines)


def test_eta_weights_what_is_left_by_the_estimates_and_the_pace_so_far():
    estimates = {"small": 60.0, "big": 600.0, "next": 300.0}
    # nothing has ended: every estimate, less what the running one has done, over 2 workers
    assert console.estimated_eta(estimates, {"small": 0.0}, {}, set(), 30.0, jobs=2) == (30 + 600 + 300) / 2
    # small took twice its estimate: the rest is scaled by 2
    assert console.estimated_eta(estimates, {"small": 0.0, "big": 120.0}, {"small": 120.0}, {"small"}, 120.0,
                                 jobs=1) == 1200 + 600
    assert "ETA 2.0 min (the dry run's estimates)" in console.progress_line(0, 1, 0, 1, 10, eta=120)


def test_queue_progress_times_each_experiment_and_prints_the_estimated_eta(capsys):
    states = {"a": "Running"}
    with console.queue_progress(["a", "b"], lambda: states, every=0.05, estimates={"a": 0.2, "b": 100.0}) as walls:
        time.sleep(0.3)
        states.update(a="Success", b="Running")
        time.sleep(0.3)
    assert 0.2 < walls["a"] < 0.5 and "b" not in walls  # b never ended
    lines = capsys.readouterr().out.splitlines()
    assert "ETA" in lines[0] and "(the dry run's estimates)" in lines[0]
    assert "(estimates scaled by the finished runs' pace)" in lines[-1]


def test_a_queue_worker_that_outlives_its_runs_is_stopped(capsys):
    """DVC's queue worker once never exited after its last run (its monitor thread had
    died): the block, waiting on it, is released by stopping the worker."""
    released = threading.Event()
    states = {"a": "Success", "b": "Failed"}
    with console.queue_progress(["a", "b"], lambda: states, every=0.05, release=released.set, grace=0.2):
        assert released.wait(10), "the hung worker was never stopped"  # the block would wait forever
    out = capsys.readouterr().out
    assert out.count("has not exited; stopping it (`dvc queue stop`)") == 1


def test_a_queue_still_running_is_never_stopped(capsys):
    released = threading.Event()
    with console.queue_progress(["a", "b"], lambda: {"a": "Success", "b": "Running"}, every=0.05,
                                release=released.set, grace=0.0):
        time.sleep(0.4)
    assert not released.is_set()


def test_training_eta_leaves_out_the_first_step_which_traces_the_graph(monkeypatch, capsys):
    from ablation.training import callbacks
    clock = iter([0.0, 100.0, 101.0, 102.0, 103.0, 104.0])  # epoch start; step 1 took 100 s (tracing), then 1 s each
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    line = callbacks.ProgressLine(steps_per_epoch=10, every=0.0)
    line.params = {"epochs": 2}
    line.on_epoch_begin(0)
    for batch in range(5):
        line.on_train_batch_end(batch, {"loss": 2.0})
    out = capsys.readouterr().out
    assert "estimated training time: 0 min (1000 ms/step)" in out  # 15 steps left at 1 s
    last = out.strip().splitlines()[-1]
    assert "step 5/10" in last and "1000 ms/step" in last and "training ETA 0.2 min" in last


READ_A_RECORD = """
import sys
from ablation.cli import common  # first, as in every stage
import tensorflow as tf
with tf.io.TFRecordWriter(sys.argv[1]) as writer:
    writer.write(b"record")
print(next(iter(tf.data.TFRecordDataset([sys.argv[1]]))).numpy())
"""


def test_a_stage_shows_no_tensorflow_info_line_unless_verbose(tmp_path):
    import subprocess

    from tests.conftest import ROOT
    quiet = {name: value for name, value in os.environ.items()
             if name not in ("TF_CPP_MIN_LOG_LEVEL", "ABLATION_VERBOSE")}
    for env, shown in ((quiet, False), ({**quiet, "ABLATION_VERBOSE": "1"}, True)):
        done = subprocess.run([sys.executable, "-c", READ_A_RECORD, str(tmp_path / "one.tfrecord")], cwd=ROOT,
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0 and done.stdout.strip() == "b'record'", done.stderr[-2000:]
        assert ("tf_record_dataset_op" in done.stderr) is shown, done.stderr  # tf.data's buffer-size line
