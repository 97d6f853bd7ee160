"""The `ablate` command and `ablate init`: a ready project in an empty folder or inside
an existing git repository, never replacing a project's params.yaml or dvc.yaml
unless asked. (tests/e2e/test_own_network.py runs a study in such a project.)"""
import subprocess

import yaml

from ablation.core.params import load_params
from tests.conftest import ABLATE, PETS_ARCHIVE, assert_clean_error, sh


def ablate(cwd, *args, check=True) -> subprocess.CompletedProcess:
    return sh(cwd, ABLATE, *args, check=check)


def test_init_writes_a_project_that_loads_and_tracks_its_builder(tmp_path, monkeypatch):
    out = ablate(tmp_path, "init", "proj", "--data", str(PETS_ARCHIVE), "--dataset", "pets").stdout
    root = tmp_path / "proj"
    assert "git: initialized" in out and "DVC: initialized" in out
    assert (root / ".git").is_dir() and (root / ".dvc").is_dir() and (root / ".dvc" / "plots" / "lines.json").exists()
    assert "html_template = plots/offline.html" in (root / ".dvc" / "config").read_text()  # plots open offline
    assert (root / ".dvc" / "plots" / "offline.html").is_file()
    monkeypatch.chdir(root)  # its builder is found from the project's root, as a stage runs
    params = load_params("params.yaml")
    assert list(params.datasets) == ["pets"] and params.model.arch == "nets.network:build"
    assert dict(params.data.paths) == {"pets": str(PETS_ARCHIVE)}
    assert "# the datasets the pipeline runs" in (root / "params.yaml").read_text()  # every knob with its meaning
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["cmd"] == "ablate train ${item.dataset} ${item.seed}"
    assert "nets" in stages["train"]["deps"]
    assert not [d for s in stages.values() for d in s.get("do", s).get("deps", []) if d.startswith("ablation/")]
    assert "/.cache/" in (root / ".gitignore").read_text().splitlines()
    assert (root / "nets" / "network.py").exists() and (root / "studies" / "example.yaml").exists()


def test_init_never_replaces_params_or_dvc_yaml_without_force(tmp_path):
    ablate(tmp_path, "init", ".")
    (tmp_path / "params.yaml").write_text("datasets: [mine]\n")
    refused = ablate(tmp_path, "init", ".", check=False)
    assert_clean_error(refused, "--force")
    assert (tmp_path / "params.yaml").read_text() == "datasets: [mine]\n"
    ablate(tmp_path, "init", ".", "--force")
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["datasets"] == ["images"]
    assert (tmp_path / "data" / "images").is_dir()  # made, empty, for the user's class folders


def test_init_in_a_subfolder_of_a_git_repository_keeps_its_git(tmp_path):
    sh(tmp_path, "git", "init", "-q")
    out = ablate(tmp_path, "init", "sub").stdout
    assert "git: initialized" not in out and "DVC: initialized" in out
    assert not (tmp_path / "sub" / ".git").exists() and (tmp_path / "sub" / ".dvc").is_dir()


def test_a_misspelt_command_or_bad_data_path_is_one_line(tmp_path):
    assert_clean_error(ablate(tmp_path, "init", ".", "--data", "nowhere", check=False), "--data nowhere")
    assert not (tmp_path / "params.yaml").exists()
    wrong = ablate(tmp_path, "trian", check=False)
    assert wrong.returncode == 2 and "did you mean `ablate train`?" in wrong.stderr and "Fix" in wrong.stderr
    listing = ablate(tmp_path).stdout
    assert all(f"  {name} " in listing for name in ("init", "fetch", "split", "train", "evaluate", "report",
                                                     "describe", "study"))
