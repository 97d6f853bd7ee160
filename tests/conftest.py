import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
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
    from ablation.params import load_params
    return load_params(ROOT / "params.yaml").model


def require_shared():
    if not SHARED.exists():
        pytest.skip(f"real-data test: {SHARED} (the offline dataset copies) is not present")


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A copy of the project's code and pipeline in a fresh directory."""
    for name in ("ablation", "stages", "dvc.yaml", "params.yaml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    return tmp_path
