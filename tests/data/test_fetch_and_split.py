import dataclasses
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ablation.core.errors import DataError
from ablation.core.sections import SplitParams
from ablation.data import datasets, fetch, shards, splitting
from ablation.training import inputs
from tests.conftest import ABLATE, CIFAR_ARCHIVE, PETS_ARCHIVE, ROOT, require_shared

SPLIT = SplitParams(test_fraction=0.2, val_fraction=0.0, seed=42)


def jpeg(color, size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def pets_files(per_class=10) -> dict[str, bytes]:
    files = {f"PetImages/Cat/{i}.jpg": jpeg((200, 10 * i, 0)) for i in range(per_class)}
    files.update({f"PetImages/Dog/{i}.jpg": jpeg((0, 10 * i, 200)) for i in range(per_class)})
    files["PetImages/Cat/666.jpg"] = jpeg((1, 2, 3))[:200]          # truncated
    files["PetImages/Dog/11702.jpg"] = b""                         # empty
    files["PetImages/Dog/bad.jpg"] = b"this is not an image"       # not an image
    files["PetImages/Dog/Thumbs.db"] = b"ignored: not an image name"
    return files


def fetch_folder(tmp_path, dataset, source) -> dict:
    return fetch.fetch(dataset, "folder", str(source), tmp_path / "fetched" / dataset)


def labels_by_id(fetched_dir) -> dict[str, int]:
    return {i: label for i, label, _ in shards.read_labels(fetched_dir)}


def test_folder_with_wrapper_dir_skips_corrupt_files(tmp_path):
    root = make_tree(tmp_path / "pets", pets_files())
    info = fetch_folder(tmp_path, "cats_vs_dogs", root)
    assert info["classes"] == ["cat", "dog"] and info["splits"] == {"train": 20}
    assert info["skipped"] == 3 and "PetImages/Cat/666.jpg" in info["skipped_files"]
    labels = labels_by_id(tmp_path / "fetched" / "cats_vs_dogs")
    assert labels["PetImages/Cat/3.jpg"] == 0 and labels["PetImages/Dog/3.jpg"] == 1
    assert json.loads((tmp_path / "fetched" / "cats_vs_dogs" / "info.json").read_text())["skipped"] == 3


def test_same_input_gives_byte_identical_shards(tmp_path):
    root = make_tree(tmp_path / "pets", pets_files())
    first = fetch_folder(tmp_path / "a", "cats_vs_dogs", root)
    second = fetch_folder(tmp_path / "b", "cats_vs_dogs", root)
    assert first == second
    shards = sorted((tmp_path / "a" / "fetched" / "cats_vs_dogs").glob("*.tfrecord"))
    assert shards and all(p.read_bytes() == (tmp_path / "b" / "fetched" / "cats_vs_dogs" / p.name).read_bytes()
                          for p in shards)


def split_layout_files() -> dict[str, bytes]:
    files = {}
    for split, count in (("train", 6), ("test", 2)):
        for label in ("airplane", "Truck"):  # case differs from tfds' names
            files.update({f"{split}/{label}/{i:04d}.png": jpeg((i, 5, 5), (32, 32)) for i in range(count)})
    return files


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_split_layout_archives(tmp_path, kind):
    archive = tmp_path / f"cifar.{kind}"
    files = split_layout_files()
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as handle:
            for name, content in files.items():
                handle.writestr(f"cifar/{name}", content)   # with a wrapper directory
    else:
        root = make_tree(tmp_path / "tree", files)
        with tarfile.open(archive, "w:gz") as handle:
            handle.add(root, arcname=".")
    info = fetch_folder(tmp_path, "cifar10", archive)
    assert info["splits"] == {"test": 4, "train": 12} and info["skipped"] == 0
    labels = labels_by_id(tmp_path / "fetched" / "cifar10")
    truck = [label for i, label in labels.items() if "Truck" in i]
    assert truck and set(truck) == {9}  # tfds: airplane=0 ... truck=9


def test_unknown_dataset_from_folder_sorts_classes(tmp_path):
    images = {f"{c}/{i}.jpg": jpeg((i, 0, 0)) for c in ("tulip", "rose") for i in range(3)}
    root = make_tree(tmp_path / "flowers", images)
    info = fetch_folder(tmp_path, "my_flowers", root)
    assert info["classes"] == ["rose", "tulip"]


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: make_tree(tmp / "empty", {"notes/readme.txt": b"x"}), "holds no image files"),
    (lambda tmp: make_tree(tmp / "broken", {"Cat/1.jpg": b"", "Dog/2.jpg": b"xx"}), "no usable image"),
    (lambda tmp: make_tree(tmp / "zoo", {"cat/1.jpg": jpeg((1, 1, 1)), "horse/1.jpg": jpeg((1, 1, 1))}),
     "do not belong to cats_vs_dogs"),
    (lambda tmp: make_tree(tmp, {"file.rar": b"x"}) / "file.rar", "neither a directory nor"),
])
def test_bad_inputs_stop_with_a_message_naming_the_path(tmp_path, setup, message):
    source = setup(tmp_path)
    with pytest.raises(DataError, match=message) as error:
        fetch_folder(tmp_path, "cats_vs_dogs", source)
    assert "Fix" in str(error.value) or str(source) in str(error.value)


def test_folder_source_needs_a_path(tmp_path):
    with pytest.raises(DataError, match="data.paths.cats_vs_dogs"):
        fetch.fetch("cats_vs_dogs", "folder", None, tmp_path / "out")


def test_tfds_source_without_network(tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=12):
        info = fetch.fetch("cifar10", "tfds", None, tmp_path / "cifar10")
    assert info["source"] == "tfds" and info["classes"][9] == "truck"
    assert info["splits"] == {"test": 12, "train": 12}
    images = [e["image"] for e in shards.read_records(tmp_path / "cifar10").take(2).as_numpy_iterator()]
    assert tf.io.decode_image(images[0]).shape[-1] == 3


def _network_can_be_cut() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-n", "true"]).returncode == 0


def test_tfds_route_fails_fast_offline_naming_the_offline_route(project_copy, tmp_path):
    """The real tfds code path, unmocked, in a network namespace with no network
    (root's `unshare -n`: nothing leaves the machine): tfds imports (its
    undeclared importlib_resources is pinned), builds cifar10's builder and finds
    no prepared copy; the host check then fails in seconds, not minutes of retries."""
    if not _network_can_be_cut():
        pytest.skip("needs `unshare -n` (root) to run without a network")
    start = time.perf_counter()
    offline = ["unshare", "-n", ABLATE, "fetch", "cifar10", "-S", "data.source=tfds"]
    result = subprocess.run(offline, cwd=project_copy, capture_output=True, text=True,
                            env={**os.environ, "TFDS_DATA_DIR": str(tmp_path / "tfds")})
    seconds = time.perf_counter() - start
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "www.cs.toronto.edu" in result.stderr and "-S data.source=folder" in result.stderr
    assert seconds < 90, f"took {seconds:.0f} s"  # 3.5 minutes of tfds retries before the check


def test_tfds_fetch_reads_only_the_splits_the_split_stage_uses():
    assert datasets.tfds_splits("svhn", ["extra", "test", "train"]) == ["train", "test"]  # no 531k extra
    assert datasets.tfds_splits("svhn", []) == ["train", "test"]  # offline: the table's
    assert datasets.tfds_splits("cats_vs_dogs", ["train"]) == ["train"]
    assert datasets.tfds_splits("cifar10", []) == ["train", "test"]
    with pytest.raises(DataError, match="has no 'train' split .it has: validation.. Fix: .*data.source=folder"):
        datasets.tfds_splits("imagenette_val_only", ["validation"])


def test_svhn_is_one_table_entry_that_fetch_describe_and_the_dry_run_read(monkeypatch, project_copy):
    """`svhn` is tfds' svhn_cropped: ten digit classes, its train and test splits."""
    assert datasets.tfds_name("svhn") == "svhn_cropped" and datasets.tfds_name("mnist") == "mnist"
    assert datasets.class_names("svhn") == list("0123456789")
    from ablation.core.params import load_params
    from ablation.study.dry_run import train_images
    params = load_params(ROOT / "params.yaml", ["datasets=[svhn]", "data.source=tfds", "data.limit=null"])
    assert train_images(params.for_dataset("svhn")) == round(73_257 * (1 - params.split.val_fraction))
    described = subprocess.run([ABLATE, "describe", "-S", "datasets=[svhn]"], cwd=project_copy,
                               capture_output=True, text=True)
    row = next(line for line in described.stdout.splitlines() if line.startswith("| svhn"))
    assert "32x32x3" in row and "resnet_cifar20" in row, described.stderr[-2000:]

    # fetch asks tfds for svhn_cropped's train and test splits only.
    asked = {}

    class Builder:
        info = type("Info", (), {"splits": {"train": 0, "test": 0, "extra": 0}})()

    class Loaded(BaseException):  # past fetch_tfds' handlers of tfds' own errors
        pass

    def load(name, **options):
        raise Loaded(name, options["split"])

    import tensorflow_datasets as tfds
    monkeypatch.setattr(tfds, "builder", lambda name: asked.setdefault("builder", name) and Builder())
    monkeypatch.setattr(tfds, "load", load)
    with pytest.raises(Loaded) as loaded:
        fetch.fetch_tfds("svhn", project_copy / "data" / "fetched" / "svhn")
    assert asked["builder"] == "svhn_cropped" and loaded.value.args == ("svhn_cropped", ["train", "test"])


def test_tfds_unknown_dataset_points_to_folder(tmp_path):
    with pytest.raises(DataError, match="data.source=folder"):
        fetch.fetch("no_such_dataset_xyz", "tfds", None, tmp_path / "x")


# --- split ---------------------------------------------------------------------------

@pytest.fixture
def pets_fetched(tmp_path):
    files = {f"PetImages/{c}/{i}.jpg": jpeg((i, 0, 0), (8, 8)) for c in ("Cat", "Dog") for i in range(50)}
    fetch_folder(tmp_path, "cats_vs_dogs", make_tree(tmp_path / "pets", files))
    return tmp_path / "fetched" / "cats_vs_dogs"


def test_split_is_stratified_disjoint_and_seeded(tmp_path, pets_fetched):
    params = dataclasses.replace(SPLIT, val_fraction=0.25)
    counts = splitting.split(pets_fetched, params, None, tmp_path / "a")
    assert counts["test"]["per_class"] == {"cat": 10, "dog": 10}
    assert counts["val"]["per_class"] == {"cat": 10, "dog": 10}
    assert counts["train"]["total"] == 60
    manifest = splitting.read_manifest(tmp_path / "a")
    ids = [set(i for i, _ in manifest[s]) for s in splitting.SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    splitting.split(pets_fetched, params, None, tmp_path / "b")
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (tmp_path / "b" / "manifest.csv").read_bytes()
    splitting.split(pets_fetched, dataclasses.replace(params, seed=7), None, tmp_path / "c")
    assert (tmp_path / "a" / "manifest.csv").read_bytes() != (tmp_path / "c" / "manifest.csv").read_bytes()


def test_split_limit_keeps_classes_balanced(tmp_path, pets_fetched):
    counts = splitting.split(pets_fetched, SPLIT, 10, tmp_path / "s")
    assert counts["train"]["per_class"] == {"cat": 5, "dog": 5} and counts["test"]["total"] == 10


# --- input pipeline ---------------------------------------------------------------------

def test_decode_square_keeps_aspect_and_crops_centre():
    image = np.zeros((30, 60, 3), np.uint8)
    image[:, 15:45] = 255  # the centre square is white
    out = inputs.decode_square(tf.io.encode_png(image), 16).numpy()
    assert out.shape == (16, 16, 3) and out.min() > 200


def test_training_batches_are_reproducible_and_resumable(tmp_path, pets_fetched):
    splitting.split(pets_fetched, SPLIT, None, tmp_path / "s")
    cached, rows = inputs.load_split(pets_fetched, tmp_path / "s", "train", 8)
    assert len(rows) == 80

    def epochs(first):
        batches = inputs.training_batches(cached, len(rows), 16, "pad_crop_flip", 3, first, 3)
        return [b[0].numpy() for b in batches]

    full, resumed = epochs(0), epochs(2)
    assert len(full) == 15 and all(b.shape[1:] == (8, 8, 3) for b in full)
    assert all(np.array_equal(a, b) for a, b in zip(full[10:], resumed))  # epoch 3 identical after a resume
    assert not np.array_equal(full[0], full[5])  # each epoch reshuffles


# --- real data --------------------------------------------------------------------------

def test_real_cifar10_archive(tmp_path):
    require_shared()
    info = fetch_folder(tmp_path, "cifar10", CIFAR_ARCHIVE)
    assert info["splits"] == {"test": 10_000, "train": 50_000} and info["skipped"] == 0
    counts = splitting.split(tmp_path / "fetched" / "cifar10", SPLIT, None, tmp_path / "split")
    assert counts["train"]["total"] == 50_000 and counts["test"]["total"] == 10_000
    assert set(counts["train"]["per_class"].values()) == {5000}
    assert set(counts["test"]["per_class"].values()) == {1000}
    rows = splitting.read_manifest(tmp_path / "split")
    assert ("test/truck/0000.jpg", 9) in rows["test"] and ("train/airplane/0000.jpg", 0) in rows["train"]


def test_real_cats_vs_dogs_archive(tmp_path):
    require_shared()
    info = fetch_folder(tmp_path, "cats_vs_dogs", PETS_ARCHIVE)
    assert info["splits"] == {"train": 4000}
    counts = splitting.split(tmp_path / "fetched" / "cats_vs_dogs", SPLIT, None, tmp_path / "split")
    assert counts["train"]["total"] == 3200 and counts["test"]["total"] == 800
    assert counts["test"]["per_class"] == {"cat": 400, "dog": 400}
    labels = {i: label for i, label in sum(splitting.read_manifest(tmp_path / "split").values(), [])}
    assert labels["PetImages/Cat/10.jpg"] == 0
    assert all(label == 1 for i, label in labels.items() if "/Dog/" in i)


def test_split_too_large_for_memory_is_decoded_each_epoch(tmp_path, pets_fetched, monkeypatch, capsys):
    splitting.split(pets_fetched, SPLIT, None, tmp_path / "s")
    monkeypatch.setattr(inputs.os, "sysconf", lambda name: 1)  # a machine with almost no memory
    dataset, rows = inputs.load_split(pets_fetched, tmp_path / "s", "train", 8)
    assert "does not fit in memory" in capsys.readouterr().err
    assert sum(1 for _ in dataset) == len(rows) == 80


def png(size) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_special_files_links_and_extreme_shapes_are_counted_never_read(tmp_path):
    """A `.jpg` link to /dev/zero (stat size 0, endless to read) and a FIFO are skipped
    and counted, a linked class folder is counted, not entered, and a 300,000 x 1 PNG
    (0.3 megapixels, under the limit) is skipped for its shape."""
    root = make_tree(tmp_path / "pets", {**pets_files(), "PetImages/Dog/long.png": png((300_000, 1))})
    os.symlink("/dev/zero", root / "PetImages" / "Cat" / "zero.jpg")
    os.mkfifo(root / "PetImages" / "Dog" / "pipe.jpg")
    os.symlink(root / "PetImages" / "Dog", root / "PetImages" / "Cat" / "linked")
    info = fetch_folder(tmp_path, "cats_vs_dogs", root)
    assert info["splits"] == {"train": 20}
    assert {"PetImages/Cat/zero.jpg", "PetImages/Dog/pipe.jpg", "PetImages/Dog/long.png"} <= set(info["skipped_files"])
    assert "PetImages/Cat/linked/" in info["ignored_files"]


def test_tar_links_and_encrypted_or_unknown_zip_members_are_counted(tmp_path):
    source = make_tree(tmp_path / "src", pets_files())
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "PetImages", arcname="PetImages")
        link = tarfile.TarInfo("PetImages/Cat/hard.jpg")
        link.type, link.linkname = tarfile.LNKTYPE, "PetImages/Cat/1.jpg"
        tar.addfile(link)
    info = fetch_folder(tmp_path / "t", "cats_vs_dogs", archive)
    assert info["splits"] == {"train": 20} and "PetImages/Cat/hard.jpg" in info["skipped_files"]
    packed = tmp_path / "pets.zip"
    with zipfile.ZipFile(packed, "w") as archive_zip:
        for name, data in pets_files().items():
            archive_zip.writestr(name, data)
        archive_zip.writestr("PetImages/Cat/secret.jpg", jpeg((9, 9, 9)))
        archive_zip.writestr("PetImages/Dog/strange.jpg", jpeg((8, 8, 8)))
    data = bytearray(packed.read_bytes())
    with zipfile.ZipFile(packed) as check:
        secret = next(i for i in check.infolist() if i.filename.endswith("secret.jpg"))
        strange = next(i for i in check.infolist() if i.filename.endswith("strange.jpg"))
    # Mark one member encrypted (bit 0 of its flags) and give another a compression
    # method zipfile cannot undo (99, AES), in their local and central headers.
    data[secret.header_offset + 6] |= 0x1
    data[strange.header_offset + 8:strange.header_offset + 10] = (99).to_bytes(2, "little")
    central = data.rfind(b"PK\x01\x02", 0, len(data))
    while central != -1:
        name_length = int.from_bytes(data[central + 28:central + 30], "little")
        name = data[central + 46:central + 46 + name_length]
        if name == b"PetImages/Cat/secret.jpg":
            data[central + 8] |= 0x1
        elif name == b"PetImages/Dog/strange.jpg":
            data[central + 10:central + 12] = (99).to_bytes(2, "little")
        central = data.rfind(b"PK\x01\x02", 0, central)
    packed.write_bytes(bytes(data))
    info = fetch_folder(tmp_path / "z", "cats_vs_dogs", packed)
    assert info["splits"] == {"train": 20}
    assert {"PetImages/Cat/secret.jpg", "PetImages/Dog/strange.jpg"} <= set(info["skipped_files"])


def test_class_folders_that_differ_only_in_case_are_refused(tmp_path):
    root = make_tree(tmp_path / "mine", {f"{folder}/{i}.jpg": jpeg((i, 0, 0)) for folder in ("Cat", "cat", "dog")
                                         for i in range(3)})
    with pytest.raises(DataError, match=r"class folders \['Cat', 'cat'\] .* differ only in case"):
        fetch_folder(tmp_path, "my_pets", root)
