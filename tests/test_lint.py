"""The whole tree passes ruff's lint and import order (pyproject.toml's [tool.ruff])."""
import subprocess
import sys

from tests.conftest import ROOT


def test_the_tree_is_lint_clean_with_stages_importing_cli_first():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    first = [(ROOT / "stages" / f"{name}.py").read_text().split('"""', 2)[2].lstrip().splitlines()[0]
             for name in ("train", "evaluate", "fetch", "split", "report", "study")]
    assert all(line.startswith("from stages import _cli") for line in first), first  # isort keeps it first
