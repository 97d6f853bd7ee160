"""dvc.yaml's code deps equal what each stage really imports from the project, so
a result is regenerated exactly when code that produced it changes. (core/knobs.py
looks up the tables of allowed choices by module name, which this does not
follow: they decide whether a stage starts, never what it writes.)"""
import ast
import shutil
from pathlib import Path

import yaml

from tests.conftest import ROOT

PACKAGES = ("ablation",)


def _module_file(root: Path, dotted: str) -> Path | None:
    path = root / (dotted.replace(".", "/") + ".py")
    return path if path.exists() else None


def project_imports(root: Path, source: Path) -> set[Path]:
    """Project modules `source` imports directly (`import ablation.x`, `from ablation import x`,
    `from ablation.x import y`)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES and (path := _module_file(root, name)):
                found.add(path)
    return found


def transitive_imports(root: Path, entry: Path) -> set[Path]:
    seen, todo = {entry}, [entry]
    while todo:
        for module in project_imports(root, todo.pop()) - seen:
            seen.add(module)
            todo.append(module)
    return seen


def deps_mismatches(root: Path) -> list[str]:
    """Every stage whose .py deps in dvc.yaml differ from its transitive project imports."""
    problems = []
    for name, stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        module = "ablation.cli." + body["cmd"].split()[1]  # ablate NAME ...: ablation/cli/NAME.py
        entries = (_module_file(root, "ablation.cli.main"), _module_file(root, module))  # `ablate` runs both
        imported = {p.relative_to(root).as_posix() for entry in entries for p in transitive_imports(root, entry)}
        declared = {d for d in body["deps"] if d.endswith(".py")}
        if imported - declared:
            problems.append(f"{name}: imports {sorted(imported - declared)} that dvc.yaml does not list")
        if declared - imported:
            problems.append(f"{name}: dvc.yaml lists {sorted(declared - imported)} that it does not import")
    return problems


def test_package_markers_hold_no_code():
    # __init__.py files are not deps: safe only while they hold nothing but a docstring.
    for package in PACKAGES:
        body = ast.parse((ROOT / package / "__init__.py").read_text()).body
        assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), package


def test_dvc_yaml_deps_equal_each_stages_imports():
    assert deps_mismatches(ROOT) == []


def test_an_unlisted_import_is_caught(tmp_path):
    for name in ("ablation", "dvc.yaml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    split = tmp_path / "ablation" / "cli" / "split.py"
    split.write_text("from ablation.core import statistics  # noqa: F401\n" + split.read_text())
    assert any(p.startswith("split: imports") and "ablation/core/statistics.py" in p for p in deps_mismatches(tmp_path))
