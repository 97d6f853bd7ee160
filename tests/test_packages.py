"""The house plan ablation/__init__.py draws holds: seven packages in pipeline order,
each importing only from those before it (a package's own modules aside), and
package markers that hold nothing but their docstring."""
import ast
from pathlib import Path

from tests.conftest import ROOT

ORDER = ("core", "data", "nets", "training", "study", "report", "cli")


def upward_imports(root: Path) -> list[str]:
    """`module -> import` for every import of a package later in ORDER than the module's own."""
    found = []
    for path in sorted((root / "ablation").rglob("*.py")):
        parts = path.relative_to(root / "ablation").parts
        if len(parts) < 2:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                package = name.split(".")[1] if name.startswith("ablation.") else None
                if package in ORDER and ORDER.index(package) > ORDER.index(parts[0]):
                    found.append(f"{path.relative_to(root).as_posix()} -> {name}")
    return found


def test_ablation_is_seven_packages_in_pipeline_order():
    packages = {p.name for p in (ROOT / "ablation").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ORDER)
    assert not [p.name for p in (ROOT / "ablation").glob("*.py") if p.name != "__init__.py"]
    docstring = ast.get_docstring(ast.parse((ROOT / "ablation" / "__init__.py").read_text()))
    assert [line.split()[0] for line in docstring.splitlines() if line.startswith("    ")] == list(ORDER)


def test_packages_import_downward_only():
    assert upward_imports(ROOT) == []


def test_an_upward_import_is_caught(tmp_path):
    copy = tmp_path / "ablation" / "core"
    copy.mkdir(parents=True)
    (copy / "leak.py").write_text("from ablation.report import figures\n")
    assert upward_imports(tmp_path) == ["ablation/core/leak.py -> ablation.report"]


def test_every_package_marker_is_a_docstring_only():
    for marker in (ROOT / "ablation").rglob("__init__.py"):
        body = ast.parse(marker.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), marker


def test_core_reaches_later_packages_only_through_the_knob_tables():
    """core/knobs.table loads the tables that name a knob's choices by module name (so
    they are no DVC dep of fetch and split, whose outputs never depend on them): every
    lookup in core names one of knobs.TABLE_MODULES, and only knobs.py loads modules by name."""
    from ablation.core.knobs import TABLE_MODULES
    named = set()
    for path in sorted((ROOT / "ablation" / "core").glob("*.py")):
        text = path.read_text()
        assert "import_module" not in text or path.name == "knobs.py", path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("key_of", "table") \
                    and node.args and isinstance(node.args[0], ast.Constant):
                named.add(node.args[0].value)
    assert named == set(TABLE_MODULES)
