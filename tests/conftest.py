"""What the tests share: the project's and the shared data's paths, the tiny
settings every training test uses, running a stage as users do, and the small
cats_vs_dogs project the hostile-input and fail-safe tests start from."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# The console command `pip install -e .` puts beside this interpreter: what a user runs.
ABLATE = str(Path(sys.executable).parent / "ablate")
SHARED = ROOT.parent / "shared" / "datasets"
CIFAR_ARCHIVE = SHARED / "cifar10-jpeg.tar.gz"
PETS_ARCHIVE = SHARED / "cats_vs_dogs-sample.tar.gz"

# The tests' studies train on TensorFlow unless a test names a backend: the default,
# auto, would probe every installed backend in each fresh project copy.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture
def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def model_params():
    """The shipped params.yaml's model section, typed."""
    from ablation.core.params import load_params
    return load_params(ROOT / "params.yaml").model


def require_shared():
    if not SHARED.exists():
        pytest.skip(f"real-data test: {SHARED} (the offline dataset copies) is not present")


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A copy of the project's code and pipeline in a fresh directory."""
    for name in ("ablation", "dvc.yaml", "params.yaml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    return tmp_path


# The tiny settings of every test that trains: a depth-8 CIFAR ResNet for one epoch
# on 192 images of each real archive (params.yaml sections, each key replaced whole).
TINY = {
    "datasets": ["cifar10", "cats_vs_dogs"],
    "data": {"source": "folder", "limit": 192,
             "paths": {"cifar10": str(CIFAR_ARCHIVE), "cats_vs_dogs": str(PETS_ARCHIVE)},
             "image_size": {"cifar10": 32, "cats_vs_dogs": 32}},
    "model": {"arch": "resnet_cifar", "depth": 8, "shortcut": "A"},
    "train": {"epochs": 1, "batch_size": 32, "learning_rate": 0.05, "per_dataset": {}},
    "study": {"grid": {"model.residual": [True, False]}},
}


def tiny_flags(*sections: str) -> list[str]:
    """TINY's keys of `sections` as `-S KEY=VALUE` flags, for a project whose params.yaml stays as it is."""
    from ablation.study.grid import format_value
    return [flag for section in sections for key, value in TINY[section].items()
            if not isinstance(value, dict) for flag in ("-S", f"{section}.{key}={format_value(value)}")]


def merge(base: dict, changes: dict) -> dict:
    """params.yaml with each section's keys updated (the keys' values replaced whole)."""
    return {**base, **{section: {**base[section], **values} if isinstance(values, dict) else values
                       for section, values in changes.items()}}


def set_params(root: Path, changes: dict) -> None:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), changes), sort_keys=False))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def sh(root: Path, *command: str, check=True, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and result.returncode:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def stage(root: Path, name: str, *args: str, check=True, env=None) -> subprocess.CompletedProcess:
    """`ablate NAME ARGS` in root, as a user runs it; with `check`, a failure is the test's."""
    return sh(root, ABLATE, name, *args, check=check, env=env)


def fetch_until_staging(root: Path, source: Path) -> tuple[subprocess.Popen, Path]:
    """`ablate fetch` of `source` started in root and left running until its staging folder
    holds a partial shard: (the process, that folder), to be interrupted by the test."""
    # Ctrl-C as in a terminal: a child of a backgrounded shell (`.ci/run &`) would
    # inherit SIGINT ignored, and Python then installs no KeyboardInterrupt for it.
    process = subprocess.Popen([ABLATE, "fetch", DATASET, "-S", f"data.paths.{DATASET}={source}"],
                               cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    staging = root / "data" / "fetched" / f".{DATASET}.staging"
    deadline = time.time() + 120
    while not any(staging.glob("*.partial")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the fetch finished before the test could interrupt it"
    return process, staging


def assert_clean_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    """Exit 2 with one `error:` line that names `fragment` and the fix, and no traceback."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and fragment in error[0] and "Fix" in error[0], result.stderr[-2000:]


# --- a small cats_vs_dogs project ----------------------------------------------------

DATASET = "cats_vs_dogs"


def jpeg(seed: int, size=(24, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed * 7 % 255, seed * 13 % 255, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def pets(per_class=12) -> dict[str, bytes]:
    return {f"PetImages/{c}/{i}.jpg": jpeg(i + 50 * k) for k, c in enumerate(("Cat", "Dog")) for i in range(per_class)}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project copy with a small cats_vs_dogs folder of 24 px images fetched and split."""
    root = tmp_path_factory.mktemp("small_project")
    for name in ("ablation", "params.yaml"):
        subprocess.run(["cp", "-r", str(ROOT / name), str(root / name)], check=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = [DATASET]
    params["data"].update(source="folder", paths={DATASET: str(write_tree(root / "inputs" / "good", pets()))})
    params["data"]["image_size"][DATASET] = 24
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name in ("fetch", "split"):
        stage(root, name, DATASET)
    return root


# --- a network of the user's own (nets/builders.py) --------------------------------------

# A builder module: `tiny` and its options, and builders each refused for a reason of its own.
BUILDER = '''
from typing import Literal

import keras


def tiny(input_shape, num_classes, *, width: int = 8, layer_scale: bool = True, kernel: Literal[3, 7] = 3,
         drop: float = 0.0, label="x"):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, kernel, padding="same")(inputs)
    x = keras.layers.Dropout(drop)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def needs_depth(input_shape, num_classes, *, depth: int):
    return tiny(input_shape, num_classes)


def broken(input_shape, num_classes):
    raise RuntimeError("boom")


def not_a_model(input_shape, num_classes):
    return 3


def one_argument(input_shape):
    return 3
'''


# --- a study's results, made up -------------------------------------------------------

def predictions(correct: list[bool]) -> str:
    rows = [f"id{i},cat,{'cat' if ok else 'dog'},0.9" for i, ok in enumerate(correct)]
    return "\n".join(["id,label,predicted,confidence", *rows])


ONE_MACHINE = {"cpu": "AMD EPYC", "cpu_flags": ["avx2"], "gpus": [], "backend": "tensorflow", "threads": 1}


def run(test_accuracy, train_accuracy, correct, diverged=False, layers=3, start=None, machine=None):
    """start: (initial_weights, data_order) keys of train.json (None: a run recorded without them);
    machine: train.json's machine record (None: a run recorded without one), float32."""
    keys = dict(zip(("initial_weights", "data_order"), start)) if start else {}
    if machine is not None:
        keys.update(machine=machine, mixed_precision="float32")
    return {"train": {"diverged": diverged, "train_accuracy": None if diverged else train_accuracy,
                      "trainable_params": 1000, "flops": 2e6, "train_seconds": 10.0, "images_per_second": 100.0,
                      **keys},
            "eval": {"accuracy": test_accuracy, "loss": 1.0, "per_class_accuracy": {"cat": test_accuracy}},
            "history": {"loss": [2.0, 1.0], "accuracy": [0.4, train_accuracy], "val_accuracy": [0.3, test_accuracy]},
            "responses": {"layers": [f"l{i}" for i in range(layers)], "std": [1.0 + i for i in range(layers)]},
            "predictions": predictions(correct)}


def arm(name, residual, depth, runs, extra=()):
    """A study arm's result: resnet_cifar of `depth`, residual or plain, `runs` by seed on cifar10."""
    from ablation.core.params import load_params
    from ablation.study.grid import ArmResult, settings
    point = {**dict(o.split("=", 1) for o in extra), "model.residual": residual, "model.depth": depth}
    return ArmResult(name, point, load_params(ROOT / "params.yaml", ["model.arch=resnet_cifar", *settings(point)]),
                     {"cifar10": dict(enumerate(runs))} if runs else {})
