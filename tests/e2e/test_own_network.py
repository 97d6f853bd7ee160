"""A network of the user's own as the arm of a study: a builder module in the project
(`model.arch: mynet:tiny`) and a grid over one of its options, run as DVC experiments
to a report that tests the option's effect across seeds. Tiny settings, real CIFAR-10."""
import pytest

from tests.conftest import BUILDER, TINY, read_json, require_shared, set_params, sh, stage

pytestmark = pytest.mark.slow  # a study of 2 arms x 2 seeds


def test_a_study_over_an_option_of_the_user_s_own_network(project_copy):
    require_shared()
    root = project_copy
    (root / "mynet.py").write_text(BUILDER)
    set_params(root, {**TINY, "datasets": ["cifar10"], "train": {**TINY["train"], "seeds": [0, 1]},
                      "model": {"arch": "mynet:tiny"}, "study": {"grid": {"model.options.width": [4, 8]}}})
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "CI"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                    ["git", "commit", "-qm", "project"]):
        sh(root, *command)
    out = stage(root, "study", "--name", "width", "--jobs", "2").stdout
    assert "arms: tiny-width4, tiny-width8" in out
    study = (root / "reports" / "width" / "study.md").read_text()
    row = next(line for line in study.splitlines() if line.startswith("| (no other grid key) | 8 "))
    assert "(n=2)" in row and ("paired t, df 1.0" in row or "Welch, df " in row), row
    assert "The paper's claims" not in study  # no plain twins: nothing of the paper's to test
    record = read_json(root / "reports" / "width" / "runs" / "tiny-width8" / "results" / "cifar10" / "seed1"
                       / "train.json")
    assert record["model"] == "tiny" and record["builder"]["reference"] == "mynet:tiny"
    assert record["builder"]["options"] == {"width": 8, "layer_scale": True, "kernel": 3, "drop": 0.0, "label": "x"}
