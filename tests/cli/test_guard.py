"""How an `ablate` command ends on bad params: one line, and inside `dvc exp run -S`
(which rewrites params.yaml and removes the stage's outputs first) how to put both back."""
import os
import subprocess

from tests.conftest import ABLATE, ROOT, assert_clean_error


def describe(tmp_path, env):
    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    params.write_text(text.replace("  residual: true", "  residual: true\n  residul: false", 1))
    return subprocess.run([ABLATE, "describe", "--params", str(params)], cwd=ROOT, capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items() if k != "DVC_EXP_BASELINE_REV"}, **env})


def test_an_unknown_key_inside_an_experiment_says_how_to_restore(tmp_path):
    plain = describe(tmp_path, {})
    assert_clean_error(plain, "did you mean `model.residual`?")
    assert "git checkout" not in plain.stderr
    inside = describe(tmp_path, {"DVC_EXP_BASELINE_REV": "0" * 40})
    assert_clean_error(inside, "`git checkout -- params.yaml && dvc checkout` puts both back")
