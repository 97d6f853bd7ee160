"""Hostile inputs, round 5: each case the fifth probe found, one door over from the
cases before it, ends as documented or in exit 2 with one line and the fix, with
nothing lost (the README's reliability table names the doors)."""
import gzip
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image

from ablation.core.errors import DataError, ParamsError, UserError
from tests.conftest import DATASET, ROOT, assert_clean_error, fetch_until_staging, jpeg, pets, run, stage, write_tree

# --- the params and study files: one reader ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: "/dev/zero", "is a device, not a regular file"),
    (lambda tmp: (os.mkfifo(tmp / "fifo"), tmp / "fifo")[1], "is a FIFO"),
    (lambda tmp: tmp, "is a folder, not a regular file"),
])
def test_a_params_file_that_is_no_file_is_one_line(project, tmp_path, make, fragment):
    started = time.time()
    assert_clean_error(stage(project, "split", DATASET, "--params", str(make(tmp_path)), check=False), fragment)
    assert time.time() - started < 60  # a FIFO is refused, not waited on


def test_study_files_linked_to_an_endless_device_are_refused(tmp_path, monkeypatch):
    from ablation.core.layout import StudyFiles
    from ablation.study import raw_records
    monkeypatch.chdir(tmp_path)
    out = StudyFiles("p1")
    out.dir.mkdir(parents=True)
    out.report.write_text("# Study\n")
    out.owner.symlink_to("/dev/zero")
    out.metrics.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="study.json is a device, not a regular file"):
        raw_records.check_owner(out, {"set": [], "arms": {}}, replace=False)
    with pytest.raises(DataError, match="metrics.json is a device"):
        raw_records.arms_with_results(out)


@pytest.mark.parametrize("text, fragment", [
    ('{"diverged": false, "trainable_params": ' + "9" * 401 + "}", "integer of 401 digits"),
    ('{"diverged": false, "trainable_params": ' + "9" * 5000 + "}", "integer of 5,000 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels"),
])
def test_a_raw_record_out_of_bounds_is_one_line(tmp_path, text, fragment):
    from ablation.core import run_records
    from ablation.core.layout import run_files
    record = tmp_path / run_files("cifar10", 0).train_metrics
    record.parent.mkdir(parents=True)
    record.write_text(text)
    read = run_records.workspace_reader(tmp_path)
    with pytest.raises(UserError, match=fragment) as raised:
        run_records.collect_runs(["cifar10"], [0], read, origin="runs/x", fix="restore it.")
    assert "\n" not in str(raised.value)


def test_a_5000_digit_integer_in_a_preset_is_one_line(tmp_path):
    from ablation.study import grid
    (tmp_path / "p.yaml").write_text("set:\n  train.epochs: " + "7" * 5000 + "\n")
    with pytest.raises(ParamsError, match="integer of 5,000 digits"):
        grid.load_preset(tmp_path / "p.yaml")


def test_a_seed_suffix_is_ascii_digits_of_a_seed():
    from ablation.study.grid import seed_of
    assert seed_of("resnet-cifar8-s3", "resnet-cifar8") == 3
    for name in ("resnet-cifar8-s²", "resnet-cifar8-s٣", "resnet-cifar8-s" + "9" * 5000, "resnet-cifar8-s"):
        assert seed_of(name, "resnet-cifar8") is None


# --- records the report reads --------------------------------------------------------------

@pytest.mark.parametrize("predictions, fragment", [
    ("id,label,predicted,confidence\n1,cat,cat,0.9\n2,dog\n", "row 3"),
    ("id,label,predicted,confidence\n1,cat,cat,0.9\n1,cat,dog,0.8\n", "row 3"),  # an id twice
    ("id,label,predicted,confidence\n1,cat,,0.9\n", "row 2"),
])
def test_damaged_prediction_rows_are_refused_with_the_file_named(predictions, fragment):
    from ablation.core.run_records import RecordError, check_predictions
    with pytest.raises(RecordError, match=f"runs/x/predictions.csv: `{fragment}`"):
        check_predictions(predictions, "runs/x/predictions.csv")


def test_layer_responses_are_drawn_only_from_something(tmp_path):
    from ablation.core.layout import StudyFiles
    from ablation.core.run_records import RecordError, check_responses
    from ablation.report.study_report import write_study_report
    from tests.conftest import arm
    with pytest.raises(RecordError, match="`layers` is .*, not a list of the 2 layer names"):
        check_responses({"layers": [], "std": [1.0, 2.0]}, "eval/layer_responses.json")
    check_responses({"layers": [], "std": []}, "eval/layer_responses.json")  # a network without 3x3 layers
    runs = [run(0.7, 0.8, [True, False], layers=0), run(0.72, 0.8, [True, True], layers=0)]
    results = [arm("resnet20", True, 20, runs), arm("plain20", False, 20, [dict(r) for r in runs])]
    text = write_study_report(results, StudyFiles("s", tmp_path), "ablate study", "log")
    assert "Layer responses" not in text and not list(tmp_path.glob("s/figures/*layer_responses*"))


# --- one escaper ------------------------------------------------------------------------------

HOSTILE = "params`\n# Injected [click](javascript:alert(1)) <img src=x onerror=alert(1)> | $\\x$ &amp;"


def test_a_reproducing_command_cannot_become_markup(tmp_path):
    from ablation.core.layout import StudyFiles
    from ablation.report.study_report import write_study_report
    from tests.conftest import arm
    results = [arm("resnet20", True, 20, [run(0.7, 0.8, [True, False]), run(0.72, 0.8, [True, True])]),
               arm("plain20", False, 20, [run(0.6, 0.7, [False, False]), run(0.62, 0.7, [True, False])])]
    text = write_study_report(results, StudyFiles("s", tmp_path), f"ablate study --params {HOSTILE}", "log")
    assert not [line for line in text.splitlines() if line.startswith("# Injected")]
    line = next(line for line in text.splitlines() if "Every arm run as a DVC experiment" in line)
    assert "``ablate study --params params`\\n# Injected [click](javascript:alert(1)) <img src=x onerror=alert(1)> " \
           "\\| $\\x$ &amp;``" in line


def test_text_escapes_show_the_string_as_typed():
    from ablation.core import escaping
    shown = escaping.text(HOSTILE)
    assert "\n" not in shown and "\\<img" in shown and "\\[click\\]" in shown
    assert "\\\\n# Injected" in shown  # the newline shown as typed, `\\n`, mid-line
    assert escaping.text("mixed_bfloat16") == "mixed_bfloat16" and escaping.text("# h") == "\\# h"
    assert escaping.code("a`b") == "``a`b``" and escaping.code("`") == "`` ` ``"


# --- output roots and study names ------------------------------------------------------------

@pytest.mark.parametrize("root", ["reports", "results", "data/fetched", ".checkpoints"])
def test_a_symlinked_output_root_is_refused(tmp_path, monkeypatch, root):
    from ablation.core import layout
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / Path(root).parent).mkdir(parents=True)
    (project / root).symlink_to(elsewhere)
    monkeypatch.chdir(project)
    with pytest.raises(layout.LayoutError, match=f"{root} leads to {elsewhere}, outside the project"):
        layout.inside(Path(root), "cifar10")
    with pytest.raises(layout.LayoutError):
        {"reports": lambda: layout.StudyFiles("s").dir, "results": lambda: layout.run_dir("cifar10", 0),
         "data/fetched": lambda: layout.fetched_dir("cifar10"),
         ".checkpoints": lambda: layout.checkpoints_dir("cifar10", 0)}[root]()
    assert list(elsewhere.iterdir()) == []


def test_a_study_cannot_take_the_gpu_benchmarks_folder():
    from ablation.study import grid
    with pytest.raises(ParamsError, match="reports/gpu holds the GPU benchmark's figures"):
        grid.study_name("gpu", None, {}, [])


# --- bounds before work -------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, fragment", [
    (["model.depth=600002"], "at most 2,000 weighted layers"),
    (["model.arch=vgg", "model.depth=16", "model.residual=false", "model.dense_units=1000000000"],
     "at most 1,000,000,000 parameters"),
    (["model.depth=20" + "0" * 400], "more than 30 digits"),
])
def test_a_network_too_large_is_refused_before_it_is_built(overrides, fragment):
    from ablation.core.params import load_params
    started = time.time()
    with pytest.raises(ParamsError, match=fragment):
        load_params(ROOT / "params.yaml", overrides)
    assert time.time() - started < 30


# --- one study at a time ---------------------------------------------------------------------

def test_a_second_study_in_the_same_project_stops_at_once(tmp_path, monkeypatch):
    from ablation.study import repo
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    with repo.study_lock():
        with pytest.raises(UserError, match=f"another study is running in this project \\(process {os.getpid()}\\)"):
            with repo.study_lock():
                pass
    with repo.study_lock():  # released when the first ended
        pass


# --- images: EXIF, size-limit skips, tar headers --------------------------------------------------

def test_exif_orientation_is_applied_at_ingest():
    from ablation.data.ingest import _clean_image
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: show it rotated 90 degrees clockwise
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(buffer, "JPEG", exif=exif)
    data, kind = _clean_image(buffer.getvalue(), 10**6)
    with Image.open(io.BytesIO(data)) as upright:
        assert kind == "PNG" and upright.size == (20, 40)
    plain = io.BytesIO()
    Image.new("RGB", (40, 20)).save(plain, "JPEG")
    assert _clean_image(plain.getvalue(), 10**6) == (plain.getvalue(), "JPEG")  # upright: kept byte for byte


def test_size_limit_skips_are_reported_as_such(tmp_path):
    from ablation.data.ingest import TOO_LARGE, ImageFolder, ReadLimits
    folder = write_tree(tmp_path / "pets", pets(per_class=3))
    images = ImageFolder(DATASET, folder, ReadLimits(max_file_bytes=10))
    with pytest.raises(DataError, match=r"\(6 over data.max_file_mb\). Fix: raise data.max_file_mb"):
        list(images)
    assert images.skip_reasons == {TOO_LARGE: 6}


def test_a_tar_header_declaring_gigabytes_is_refused_in_bounded_memory(tmp_path):
    from ablation.data.ingest import ImageFolder
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, 2**31
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT) + bytes(3 * 2**20)))
    with pytest.raises(DataError, match="a header of 2,147,483,648 bytes"):
        ImageFolder(DATASET, archive)


# --- a stage's outputs, and SIGTERM ---------------------------------------------------------------

def test_outputs_appear_together_or_not_at_all(tmp_path):
    from ablation.core import atomic_files
    with pytest.raises(RuntimeError):
        with atomic_files.all_or_nothing():
            atomic_files.write_text(tmp_path / "predictions.csv", "id\n")
            atomic_files.write_json(tmp_path / "metrics.json", {})
            raise RuntimeError("the figure failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_files.all_or_nothing():
        atomic_files.write_text(tmp_path / "predictions.csv", "id\n")
        assert list(tmp_path.iterdir()) == [tmp_path / ".predictions.partial.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


@pytest.mark.slow
def test_sigterm_during_fetch_cleans_its_staging_and_says_so(project, tmp_path):
    source = write_tree(tmp_path / "many", pets(per_class=1500))
    process, staging = fetch_until_staging(project, source)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate()
    assert process.returncode == 143 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("terminated:")] and not staging.exists()


# --- class names of every kind, through the whole pipeline -------------------------------------------

STRANGE_CLASSES = ["$\\x$", "new\nline", "pipe|name", "<img src=x>"]


@pytest.mark.slow
def test_class_names_of_any_text_survive_every_stage_and_the_report(project, tmp_path):
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    source = write_tree(tmp_path / "odd", {f"{name}/{i}.jpg": jpeg(i + 20 * n)
                                          for n, name in enumerate(STRANGE_CLASSES) for i in range(12)})
    flags = ["-S", "datasets=[odd]", "-S", "data.image_size.odd=24", "-S", "data.augment.odd=none",
             "-S", f"data.paths.odd={source}", "-S", "train.epochs=1", "-S", "train.batch_size=8",
             "-S", "model.depth=8", "-S", "train.seeds=[0]"]
    for command in (["fetch", "odd"], ["split", "odd"], ["train", "odd", "0"], ["evaluate", "odd", "0"], ["report"]):
        stage(work, *command, *flags)
    report = (work / "reports" / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and "seed 0" not in line]
    cells = {line[2:].split(" |")[0].strip() for line in table}  # the class column, as written
    assert {"\\$\\\\x\\$", "new\\\\nline", "pipe\\|name", "\\<img src=x\\>"} <= cells
    assert "<img" not in report.replace("\\<img", "")  # every one escaped
    predictions = (work / "results" / "odd" / "seed0" / "eval" / "predictions.csv").read_text()
    from ablation.core import reading
    assert {row["label"] for row in reading.csv_rows(predictions)} == set(STRANGE_CLASSES)
    assert json.loads((work / "reports" / "metrics.json").read_text())["odd"]["runs"] == 1
