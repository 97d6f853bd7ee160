"""The whole tree passes ruff's lint and import order (pyproject.toml's [tool.ruff])."""
import subprocess
import sys

from tests.conftest import ROOT


def test_the_tree_is_lint_clean_with_commands_importing_common_first():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    first = [(ROOT / "ablation" / "cli" / f"{name}.py").read_text().split('"""', 2)[2].lstrip().splitlines()[0]
             for name in ("train", "evaluate", "fetch", "split", "report", "study")]
    assert all(line.startswith("from ablation.cli import common") for line in first), first  # isort keeps it first


def long_functions(root, limit: int = 60) -> list[str]:
    """`path:function (lines)` for each function of ablation/ over `limit` lines: one phase each."""
    import ast
    found = []
    for path in sorted((root / "ablation").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= limit:
                found.append(f"{path.relative_to(root).as_posix()}:{node.name} ({node.end_lineno - node.lineno + 1})")
    return found


def test_no_function_is_over_60_lines(tmp_path):
    assert long_functions(ROOT) == []
    (tmp_path / "ablation").mkdir()
    (tmp_path / "ablation" / "long.py").write_text("def phase():\n" + "    x = 1\n" * 60)
    assert long_functions(tmp_path) == ["ablation/long.py:phase (61)"]
