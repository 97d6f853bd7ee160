"""Every bad input a user can give a stage ends with exit code 2, one line naming
what is wrong and the fix, no traceback, and the outputs already computed left
as they were (the README's reliability table lists these cases)."""
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import ABLATE, DATASET, assert_clean_error, fetch_until_staging, jpeg, pets, stage, write_tree

pytestmark = pytest.mark.slow  # each stage run on hostile inputs


def snapshot(root: Path) -> dict[str, str]:
    """Hashes of everything fetch and split wrote."""
    files = sorted(p for p in (root / "data").rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def truncated(path: Path, data: bytes) -> Path:
    path.write_bytes(data[: len(data) // 2])
    return path


def tar(mode: str) -> bytes:
    """pets() as a tar archive in memory ("w" plain, "w:gz" compressed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, content in pets().items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in pets().items():
            archive.writestr(name, content)
    return buffer.getvalue()


FETCH_CASES = {
    "mistyped path": (lambda tmp: tmp / "no_such_folder", "does not exist"),
    "empty folder": (lambda tmp: write_tree(tmp / "empty", {"notes/readme.txt": b"x"}), "holds no image files"),
    "truncated .tar.gz": (lambda tmp: truncated(tmp / "pets.tar.gz", tar("w:gz")), "truncated or corrupt archive"),
    "empty .tar.gz": (lambda tmp: truncated(tmp / "empty.tar.gz", b""), "truncated or corrupt archive"),
    "truncated .tar": (lambda tmp: truncated(tmp / "pets.tar", tar("w")), "truncated or corrupt archive"),
    "corrupt .zip": (lambda tmp: truncated(tmp / "pets.zip", zipped()), "truncated or corrupt archive"),
    "one class only": (lambda tmp: write_tree(tmp / "cats", {f"Cat/{i}.jpg": jpeg(i) for i in range(5)}),
                       "a classifier needs at least 2"),
}


@pytest.mark.parametrize("case", FETCH_CASES)
def test_bad_fetch_input_keeps_the_previous_fetch(project, tmp_path, case):
    make, fragment = FETCH_CASES[case]
    before = snapshot(project)
    result = stage(project, "fetch", DATASET, "-S", f"data.paths.{DATASET}={make(tmp_path)}", check=False)
    assert_clean_error(result, fragment)
    assert snapshot(project) == before
    assert not list((project / "data" / "fetched").glob(".*"))  # no staging directory left behind


def test_one_class_custom_dataset_is_refused(project, tmp_path):
    source = write_tree(tmp_path / "flowers", {f"rose/{i}.jpg": jpeg(i) for i in range(5)})
    result = stage(project, "fetch", "flowers", "-S", "datasets=[flowers]", "-S", "data.image_size.flowers=24",
                   "-S", "data.augment.flowers=none", "-S", f"data.paths.flowers={source}", check=False)
    assert_clean_error(result, "a classifier needs at least 2")


def test_interrupted_fetch_keeps_the_previous_fetch(project, tmp_path):
    source = write_tree(tmp_path / "many", pets(per_class=1500))
    before = snapshot(project)
    process, staging = fetch_until_staging(project, source)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate()
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert snapshot(project) == before and not staging.exists()


def test_stray_and_unsupported_files_are_counted_not_classes(project, tmp_path):
    files = {**pets(), "PetImages/cover.jpg": jpeg(1), "PetImages/Cat/notes.txt": b"x",
             "PetImages/Dog/scan.tif": None, "PetImages/Dog/photo.webp": None}
    for name, fmt in (("PetImages/Dog/scan.tif", "TIFF"), ("PetImages/Dog/photo.webp", "WEBP")):
        buffer = io.BytesIO()
        Image.new("RGB", (24, 24), (10, 20, 30)).save(buffer, format=fmt)
        files[name] = buffer.getvalue()
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    source = write_tree(tmp_path / "p", files)
    result = stage(work, "fetch", DATASET, "-S", f"data.paths.{DATASET}={source}", check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    info = yaml.safe_load((work / "data" / "fetched" / DATASET / "info.json").read_text())
    assert info["classes"] == ["cat", "dog"] and info["splits"] == {"train": 26}  # .tif and .webp decoded
    assert info["ignored"] == 2 and set(info["ignored_files"]) == {"PetImages/cover.jpg", "PetImages/Cat/notes.txt"}
    metrics = yaml.safe_load((work / "data" / "fetched" / f"{DATASET}.metrics.json").read_text())
    assert metrics == {"examples": {"train": 26}, "skipped": 0, "ignored": 2}


def damaged_copy(project: Path, tmp_path: Path, damage) -> Path:
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    damage(next((work / "data" / "fetched" / DATASET).glob("*.tfrecord")))
    return work


@pytest.mark.parametrize("damage, fragment", [
    (lambda shard: shard.unlink(), "a partial or mixed fetch"),
    (lambda shard: shard.write_bytes(shard.read_bytes()[:-300]), "is corrupt"),
    (lambda shard: shard.write_bytes(shard.read_bytes()[:40] + b"\0" * 60 + shard.read_bytes()[100:]), "is corrupt"),
], ids=["missing shard", "truncated shard", "flipped bytes"])
def test_split_refuses_partial_or_corrupt_shards(project, tmp_path, damage, fragment):
    work = damaged_copy(project, tmp_path, damage)
    before = (work / "data" / "split" / DATASET / "manifest.csv").read_bytes()
    assert_clean_error(stage(work, "split", DATASET, check=False), fragment)
    assert (work / "data" / "split" / DATASET / "manifest.csv").read_bytes() == before


@pytest.mark.parametrize("overrides, fragment", [
    (["data.limit=1"], "data.limit=1 leaves"),
    (["split.test_fraction=0.01"], "too few for a test split"),
], ids=["limit of one", "too few per class"])
def test_split_refuses_a_class_missing_from_a_split(project, overrides, fragment):
    before = snapshot(project)
    flags = [f for o in overrides for f in ("-S", o)]
    assert_clean_error(stage(project, "split", DATASET, *flags, check=False), fragment)
    assert snapshot(project) == before


def test_evaluate_and_report_before_train(project):
    before = snapshot(project)
    assert_clean_error(stage(project, "evaluate", DATASET, "0", check=False), "train first")
    assert_clean_error(stage(project, "report", check=False), "train first")
    assert snapshot(project) == before


@pytest.mark.parametrize("args, fragment", [
    (["split", "cifar100"], "is not in `datasets`"),
    (["describe", "-S", "model.arch=vgg", "-S", "model.depth=11", "-S", "model.residual=false"],
     "data.image_size.cats_vs_dogs"),
    (["describe", "-S", "train.batch_size=16"], "train.per_dataset.cats_vs_dogs.batch_size"),
], ids=["dataset not in params", "vgg below 32 px", "-S overridden by per_dataset"])
def test_params_errors(project, args, fragment):
    before = snapshot(project)
    assert_clean_error(stage(project, *args, check=False), fragment)
    assert snapshot(project) == before


def test_duplicate_keys_in_params(project, tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text((project / "params.yaml").read_text() + "datasets: [cifar10]\n")
    assert_clean_error(stage(project, "describe", "--params", str(bad), check=False), "duplicate key 'datasets'")


def test_deep_cifar_resnet_builds(project):
    # 302 layers and more used to hit Python's recursion limit inside keras
    result = stage(project, "describe", "-S", "model.arch=resnet_cifar", "-S", "model.depth=302",
                   "-S", "model.shortcut=A", check=False)
    assert result.returncode == 0 and "resnet_cifar302" in result.stdout and "|               302 |" in result.stdout


# --- names that would leave the project -------------------------------------------------

@pytest.mark.parametrize("outside_name", ["absolute", "dotdot"])
def test_a_dataset_name_never_reaches_outside_the_project(project, tmp_path, outside_name):
    photos = write_tree(tmp_path / "photos", pets())
    before = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    name = str(photos) if outside_name == "absolute" else "../../photos"
    result = stage(project, "fetch", name, "-S", f"datasets=[{name}]", "-S", f"data.paths.{name}={photos}",
                   "-S", f"data.image_size.{name}=32", "-S", f"data.augment.{name}=none", check=False)
    assert_clean_error(result, "`datasets`")
    assert "letters, digits" in result.stderr
    after = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert after == before  # the outside directory byte for byte


def test_layout_refuses_a_symlink_out_of_the_project(tmp_path):
    from ablation.core import layout
    root = tmp_path / "fetched"
    root.mkdir()
    (root / "evil").symlink_to(tmp_path)
    with pytest.raises(layout.LayoutError, match="outside the project"):
        layout.inside(root, "evil")
    for name in ("../x", "/etc"):
        with pytest.raises(layout.LayoutError):
            layout.inside(root, name)
    assert layout.inside(root, "cifar10") == root / "cifar10"


# --- bounded memory for any single input -------------------------------------------------

def peak_rss_mb(root: Path, name: str, *args: str) -> tuple[int, str, float]:
    """(exit code, stderr, peak resident memory in MB) of `ablate NAME ARGS` run in root."""
    err = root / "stderr.txt"
    with open(err, "w") as handle:
        process = subprocess.Popen([ABLATE, name, *args], cwd=root,
                                   stdout=subprocess.DEVNULL, stderr=handle)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, err.read_text(), usage.ru_maxrss / 1024


class Zeros(io.RawIOBase):
    """A file of zero bytes, as long as it is read."""

    def readinto(self, buffer):
        buffer[:] = bytes(len(buffer))
        return len(buffer)


def test_huge_members_and_images_are_skipped_in_bounded_memory(project, tmp_path):
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    code, err, baseline = peak_rss_mb(work, "fetch", DATASET)
    assert code == 0, err
    # A 4.7 MB zip holding a 1 GiB member, beside the good images.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in pets().items():
            archive.writestr(name, content)
        with archive.open("PetImages/Cat/huge.jpg", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(b"\0" * (16 << 20))
    code, err, peak = peak_rss_mb(work, "fetch", DATASET, "-S", f"data.paths.{DATASET}={bomb}")
    assert code == 0, err
    assert json.loads((work / "data" / "fetched" / f"{DATASET}.metrics.json").read_text())["skipped"] == 1
    assert peak < baseline + 200, (peak, baseline)  # reading the member would add 1,024 MB
    # A .tar.gz holding a 512 MiB member (0.5 MB compressed).
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz", compresslevel=1) as archive:
        for name, content in pets().items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        info = tarfile.TarInfo("PetImages/Dog/huge.png")
        info.size = 512 << 20
        archive.addfile(info, Zeros())
    code, err, peak = peak_rss_mb(work, "fetch", DATASET, "-S", f"data.paths.{DATASET}={bomb}")
    assert code == 0, err
    assert json.loads((work / "data" / "fetched" / f"{DATASET}.metrics.json").read_text())["skipped"] == 1
    assert peak < baseline + 200, (peak, baseline)
    # A folder with a sparse 3 GiB "photo" and a 64-megapixel PNG (300 KB on disk, 192 MB decoded).
    folder = write_tree(tmp_path / "folder", pets())
    with open(folder / "PetImages" / "Dog" / "sparse.jpg", "wb") as handle:
        handle.truncate(3 << 30)
    Image.new("1", (8000, 8000)).save(folder / "PetImages" / "Dog" / "poster.png")
    code, err, peak = peak_rss_mb(work, "fetch", DATASET, "-S", f"data.paths.{DATASET}={folder}")
    assert code == 0, err
    info = json.loads((work / "data" / "fetched" / DATASET / "info.json").read_text())
    assert info["skipped"] == 2 and set(info["skipped_files"]) == {"PetImages/Dog/sparse.jpg",
                                                                   "PetImages/Dog/poster.png"}
    assert peak < baseline + 200, (peak, baseline)


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_yaml_aliases_are_refused_at_once(project, tmp_path):
    preset = tmp_path / "laughs.yaml"
    preset.write_text(BILLION_LAUGHS)
    code, err, peak = peak_rss_mb(project, "study", "--preset", str(preset), "--report-only")
    assert code == 2 and "aliases are not allowed" in err and "Traceback" not in err, err
    assert peak < 1500
    params = tmp_path / "params.yaml"
    params.write_text((project / "params.yaml").read_text() + BILLION_LAUGHS.replace("a:", "x-anchor:", 1))
    assert_clean_error(stage(project, "describe", "--params", str(params), check=False), "aliases are not allowed")


# --- nonsense values ------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["describe", "-S", f"data.image_size.{DATASET}=100000"], "<= 1024"),
    (["describe", "-S", "train.warmup_epochs=100", "-S", "train.epochs=1"], "warmup_epochs"),
    (["study", "--jobs", "-1", "--report-only"], "--jobs"),
    (["study", "--jobs", "0", "--report-only"], "--jobs"),
    (["train", DATASET, "-1"], "seed -1"),
    (["describe", "-S", "train.seeds=[-3]"], "train.seeds"),
], ids=["image side 100000", "warm-up past training", "jobs -1", "jobs 0", "negative seed", "negative seeds"])
def test_nonsense_values_are_refused(project, args, fragment):
    before = snapshot(project)
    assert_clean_error(stage(project, *args, check=False), fragment)
    assert snapshot(project) == before


def test_sixteen_bit_images_keep_their_gradient():
    from ablation.data.ingest import ReadLimits, _clean_image
    gradient = np.linspace(0, 65535, 5).astype(np.uint16).reshape(1, 5)
    buffer = io.BytesIO()
    Image.fromarray(gradient).save(buffer, format="PNG")
    data, fmt = _clean_image(buffer.getvalue(), ReadLimits().max_pixels)
    stored = np.asarray(Image.open(io.BytesIO(data)))[0, :, 0]
    assert fmt == "PNG" and stored.tolist() == [0, 64, 127, 191, 255]  # v / 257, not clipped at 255


# --- files that cannot be read ----------------------------------------------------------------

def test_unreadable_files_in_an_image_folder_are_skipped_and_counted(project, tmp_path):
    folder = write_tree(tmp_path / "links", pets())
    cats = folder / "PetImages" / "Cat"
    (cats / "loop.jpg").symlink_to(cats / "loop.jpg")
    (cats / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with open(os.fsencode(cats) + b"/caf\xe9.jpg", "wb") as handle:  # a Latin-1 name, not UTF-8
        handle.write(jpeg(3))
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    result = stage(work, "fetch", DATASET, "-S", f"data.paths.{DATASET}={folder}", check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    info = json.loads((work / "data" / "fetched" / DATASET / "info.json").read_text())
    assert info["skipped"] == 3 and info["splits"] == {"train": 24}
    assert "PetImages/Cat/caf\\xe9.jpg" in info["skipped_files"]


def leak(manifest: Path) -> None:
    """Three training images appended as test rows: a split that leaks."""
    rows = manifest.read_text().splitlines()
    train = [row for row in rows[1:] if row.endswith(",train")][:3]
    manifest.write_text("\n".join([*rows, *(row.rsplit(",", 1)[0] + ",test" for row in train)]) + "\n")


def cut_mid_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b",", len(data) // 2)])  # ends inside a row, after its id


@pytest.mark.parametrize("damage, args, fragment", [
    (lambda root: truncated(root / "data" / "fetched" / DATASET / "info.json",
                            (root / "data" / "fetched" / DATASET / "info.json").read_bytes()),
     ["split", DATASET], "info.json is not valid JSON"),
    (lambda root: cut_mid_line(root / "data" / "split" / DATASET / "manifest.csv"),
     ["train", DATASET, "0"], "manifest.csv line"),
    (lambda root: (root / "data" / "split" / DATASET / "manifest.csv").open("a")
     .write("PetImages/Cat/ghost.jpg,0,train\n"),
     ["train", DATASET, "0"], "the fetched data lacks"),
    (lambda root: leak(root / "data" / "split" / DATASET / "manifest.csv"), ["train", DATASET, "0"],
     "names 3 example(s) twice, in two splits or one"),
    (lambda root: leak(root / "data" / "split" / DATASET / "manifest.csv"), ["evaluate", DATASET, "0"],
     "(train, test)"),
    (lambda root: (root / "params.yaml").write_bytes(b"datasets: [caf\xe9]\n"), ["describe"], "not UTF-8"),
    (lambda root: (root / "bad.yaml").write_text("set: {model.depth: [unclosed\n"),
     ["study", "--preset", "bad.yaml", "--report-only"], "bad.yaml is not valid YAML"),
], ids=["truncated info.json", "truncated manifest", "manifest of another fetch", "split leak at train",
        "split leak at evaluate", "non-UTF-8 params.yaml", "malformed preset"])
def test_damaged_files_are_one_line_errors(project, tmp_path, damage, args, fragment):
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    damage(work)
    before = snapshot(work)
    assert_clean_error(stage(work, *args, check=False), fragment)
    assert snapshot(work) == before


@pytest.mark.parametrize("backend, fragment", [("tensorflw", "is not a Keras backend"), ("torch", "not installed")])
def test_a_bad_keras_backend_is_one_line(project, tmp_path, backend, fragment):
    # torch made unimportable, as where it is not installed (a module found on sys.path first)
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nclass Absent:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Absent())\n")
    result = subprocess.run([ABLATE, "describe"], cwd=project, capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(tmp_path)})
    assert_clean_error(result, fragment)


def test_a_link_to_an_endless_device_stays_within_the_memory_bound(project, tmp_path):
    """A `.jpg` link to /dev/zero (8.3 GB in 58 s before it was checked as a regular
    file) and a FIFO in a class folder: fetch counts both and stays under 1.5 GB."""
    folder = write_tree(tmp_path / "pets", pets())
    os.symlink("/dev/zero", folder / "PetImages" / "Cat" / "zero.jpg")
    os.mkfifo(folder / "PetImages" / "Dog" / "pipe.jpg")
    work = tmp_path / "work"
    subprocess.run(["cp", "-r", str(project), str(work)], check=True)
    code, err, peak = peak_rss_mb(work, "fetch", DATASET, "-S", f"data.paths.{DATASET}={folder}")
    assert code == 0 and "Traceback" not in err, err[-2000:]
    info = json.loads((work / "data" / "fetched" / DATASET / "info.json").read_text())
    assert {"PetImages/Cat/zero.jpg", "PetImages/Dog/pipe.jpg"} <= set(info["skipped_files"])
    assert peak < 1500
