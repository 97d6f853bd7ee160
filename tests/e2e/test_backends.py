"""Keras backends other than TensorFlow: the pipeline trains and evaluates under
JAX and torch, a saved model predicts the same under TensorFlow, and the GPU benchmark
runs without TensorFlow. Tiny settings on the real archives in ../shared/datasets/."""
import json
import math
import sys

import numpy as np
import pytest

from tests.conftest import ABLATE, CIFAR_ARCHIVE, ROOT, TINY, read_json, require_shared, set_params, sh

pytestmark = pytest.mark.slow  # the pipeline on JAX and PyTorch

PREDICT = """
import sys, numpy as np, keras
import ablation.nets.models  # registers the custom layers
model = keras.saving.load_model(sys.argv[1], compile=False)
images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
np.save(sys.argv[2], keras.ops.convert_to_numpy(model(images, training=False)))
"""

# Runs a module with TensorFlow made unimportable, as on the GPU machine.
WITHOUT_TENSORFLOW = """
import runpy, sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ImportError(f"{name} imported: this must run without TensorFlow")
sys.meta_path.insert(0, NoTensorFlow())
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_runs_the_pipeline_and_models_cross_backends(project_copy, tmp_path, backend):
    """Every stage under the backend; the model it saved predicts the same under TensorFlow.
    torch is an optional install (its CPU wheel: README), skipped where it is absent."""
    require_shared()
    if backend == "torch":
        pytest.importorskip("torch")
    root = project_copy
    # float32: in bf16 the two backends' kernels round differently, and this compares their outputs.
    set_params(root, {**TINY, "datasets": ["cifar10"], "train": {**TINY["train"], "epochs": 3,
                                                                 "mixed_precision": "float32"}})
    sh(root, "dvc", "init", "-q", "--no-scm")
    sh(root, "dvc", "repro", env={"KERAS_BACKEND": backend})

    run = root / "results" / "cifar10" / "seed0"
    train = read_json(run / "train.json")
    assert train["backend"] == backend and train["diverged"] is False
    losses = [float(line.split("\t")[1]) for line in
              (run / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1:]]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    evaluation = read_json(run / "eval" / "metrics.json")
    assert evaluation["test_examples"] > 0 and evaluation["non_finite_predictions"] == 0
    assert read_json(root / "reports" / "metrics.json")["cifar10"]["test_accuracy"] == round(evaluation["accuracy"], 4)

    # The model the backend saved predicts the same under TensorFlow.
    outputs = {}
    for predictor in (backend, "tensorflow"):
        outputs[predictor] = tmp_path / f"{predictor}.npy"
        sh(ROOT, sys.executable, "-c", PREDICT, str(run / "model.keras"), str(outputs[predictor]),
           env={"KERAS_BACKEND": predictor})
    own, tf_out = np.load(outputs[backend]), np.load(outputs["tensorflow"])
    assert own.shape == (16, 10) and np.allclose(own.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(own, tf_out, atol=1e-5)


def test_gpu_recipe_benchmark_runs_without_tensorflow(tmp_path):
    require_shared()
    out = sh(ROOT, sys.executable, "-c", WITHOUT_TENSORFLOW, "benchmarks.gpu_recipe", "--archive", str(CIFAR_ARCHIVE),
             "--limit", "300", "--epochs", "2", "--arms", "resnet20", "--precision", "float32",
             "--imagenet-arms", "resnet50", "--imagenet-side", "32", "--imagenet-batch", "2", "--imagenet-steps", "1",
             "--out", str(tmp_path), env={"KERAS_BACKEND": "jax"}).stdout
    assert "backend jax" in out
    results = json.loads((tmp_path / "gpu_recipe.json").read_text())
    assert [(r["arm"], r["precision"]) for r in results["cifar"]] == [("resnet20", "float32")]
    for row in results["cifar"]:
        assert row["train_images"] == 300 and row["test_images"] == 300  # 30 per class in each split
        assert math.isfinite(row["final_train_loss"]) and 0 <= row["test_accuracy"] <= 1
        assert row["images_per_second"] > 0
        assert math.isclose(row["paper_recipe_projected_minutes"],
                            64_000 * 128 / row["images_per_second"] / 60, rel_tol=0.01)
    [step] = results["imagenet"]
    assert step["arm"] == "resnet50" and step["images_per_second"] > 0 and step["keras_resnet50_images_per_second"] > 0
    section = (tmp_path / "gpu_recipe.md").read_text()
    assert "| resnet20 " in section and "keras ResNet50 images/s" in section


def test_a_study_dry_run_with_backend_auto_probes_each_installed_backend():
    from ablation.core import backends
    out = sh(ROOT, ABLATE, "study", "--preset", "studies/quick-cpu.yaml", "--dry-run",
             "--backend", "auto").stdout
    line = next(line for line in out.splitlines() if line.startswith("backend: auto -> "))
    chosen = line.split()[3]
    assert chosen in backends.installed() and all(f"{name} " in line for name in backends.installed())
    assert f"trains resnet_cifar20 at ({chosen}), plus " in out.splitlines()[-1]  # the estimate uses it
