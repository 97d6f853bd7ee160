"""A network of the user's own, ablated as a user does it: `ablate init` in a folder
outside the checkout, a builder module in its nets/, a typo and a wrong type refused
in one line, a grid over one of the builder's options run as DVC experiments to a
report that tests the option's effect across seeds, and the edited builder making
train stale. Tiny settings, real CIFAR-10."""
import pytest
import yaml

from tests.conftest import ABLATE, BUILDER, CIFAR_ARCHIVE, TINY, assert_clean_error, read_json, require_shared, sh

pytestmark = pytest.mark.slow  # a study of 2 arms x 2 seeds


@pytest.fixture
def initialized(tmp_path):
    """`ablate init` with the CIFAR-10 archive, the tiny builder in nets/, tiny settings, committed."""
    require_shared()
    root = tmp_path / "mine"
    sh(tmp_path, ABLATE, "init", "mine", "--data", str(CIFAR_ARCHIVE), "--dataset", "cifar10")
    (root / "nets" / "mynet.py").write_text(BUILDER)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(limit=TINY["data"]["limit"])
    params["model"].update(arch="nets.mynet:tiny")
    params["train"].update({**TINY["train"], "seeds": [0, 1]})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "config", "user.email", "ci@example.com"], ["git", "config", "user.name", "CI"],
                    ["git", "add", "-A"], ["git", "commit", "-qm", "ablate init, and my network"]):
        sh(root, *command)
    return root


def test_a_study_over_an_option_of_the_user_s_own_network(initialized):
    root = initialized
    typo = sh(root, ABLATE, "study", "--grid", "model.options.widht=4,8", "--dry-run", check=False)
    assert_clean_error(typo, "is not an option of tiny; did you mean `model.options.width`?")
    wrong = sh(root, ABLATE, "study", "--grid", "model.options.width=4,wide", "--dry-run", check=False)
    assert_clean_error(wrong, "model.options.width")

    out = sh(root, ABLATE, "study", "--grid", "model.options.width=4,8", "--name", "width", "--jobs", "2").stdout
    assert "arms: tiny-width4, tiny-width8" in out
    study = (root / "reports" / "width" / "study.md").read_text()
    row = next(line for line in study.splitlines() if line.startswith("| (no other grid key) | 8 "))
    assert "(n=2)" in row and ("paired t, df 1.0" in row or "Welch, df " in row), row
    assert "The paper's claims" not in study  # no plain twins: nothing of the paper's to test
    record = read_json(root / "reports" / "width" / "runs" / "tiny-width8" / "results" / "cifar10" / "seed1"
                       / "train.json")
    assert record["model"] == "tiny" and record["builder"]["reference"] == "nets.mynet:tiny"
    assert record["builder"]["options"] == {"width": 8, "layer_scale": True, "kernel": 3, "drop": 0.0, "label": "x"}

    # Verify by replication: both seeds rerun here, paired with the record's; the same machine kind
    # reproduces them bit for bit (the builder's hash included), so the difference is exactly 0.
    verified = sh(root, ABLATE, "study", "--grid", "model.options.width=4,8", "--name", "width", "--verify",
                  "tiny-width8", "--seeds", "2").stdout
    assert "rerun minus record +0.0000" in verified and "paired t" in verified, verified[-2000:]
    assert "tiny-width8 on cifar10: EQUIVALENT to the record with 2 rerun seed(s)." in verified

    exps = sh(root, ABLATE, "exps").stdout  # one narrow row per experiment, what it changed
    assert "width=8" in next(line for line in exps.splitlines() if line.startswith("tiny-width8"))
    assert max(map(len, exps.splitlines())) < 120, exps

    sh(root, "dvc", "exp", "apply", "tiny-width8")  # its dvc.lock and outputs into the workspace
    assert "train@" not in sh(root, "dvc", "status").stdout
    with (root / "nets" / "mynet.py").open("a") as builder:
        builder.write("# edited\n")
    stale = sh(root, "dvc", "status").stdout
    assert "train@cifar10-0" in stale and "modified:" in stale and "nets" in stale, stale
