"""The one reader (ablation/core/reading.py): what it refuses, and that every read
of the library goes through it (an AST scan: a new `open()` or `json.loads` on
an input elsewhere fails here until it uses the reader or is listed below with
the reason it may not)."""
import ast
import gzip
import os
import subprocess

import pytest

from ablation.core import reading
from ablation.core.errors import DataError, ParamsError, UserError
from tests.conftest import ROOT

# (module, call) -> why that read does not go through the reader.
ALLOWED_READS = {
    ("core/reading.py", "*"): "the reader itself",
    ("core/machine.py", "read_text"): "/proc/cpuinfo: the kernel's, reported as size 0",
    ("core/declarations.py", "read_text"): "the suite's own files, regenerated from its declarations",
    ("data/ingest.py", "open"): "image files, bounded by data.max_file_mb (an unusable one is counted, not an error)",
    ("data/ingest.py", "tarfile.open"): "archives: members bounded by data.max_file_mb, headers by MAX_TAR_HEADER",
    ("data/ingest.py", "zipfile.ZipFile"): "archives: zipfile stops a member at its declared size",
    ("report/plots_page.py", "tarfile.open"): "npm's tarball of Vega, fetched by the maintainer's command",
    ("report/plots_page.py", "read_text"): "the Vega build just unpacked from that tarball",
    ("core/yaml_text.py", "yaml.load"): "parses text the reader returned, its nesting bounded as it is composed",
    ("core/console.py", "subprocess.Popen"): "dvc's output streamed line by line to the terminal, never held",
    ("study/overhead.py", "subprocess.run"): "the suite's own start-up, timed; its output is not read",
    ("report/plots_page.py", "subprocess.run"): "`npm pack`, the maintainer's command that fetches Vega",
}
READS = {"read_text", "read_bytes", "json.load", "json.loads", "yaml.load", "yaml.safe_load", "tarfile.open",
         "zipfile.ZipFile", "gzip.open", "open", "subprocess.run", "subprocess.check_output", "subprocess.Popen",
         "csv.reader", "csv.DictReader"}


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if owner == "reading":  # through the door
            return None
        dotted = f"{owner}.{func.attr}" if owner else func.attr
        return dotted if dotted in READS else func.attr if func.attr in ("read_text", "read_bytes") else dotted
    return None


def _writes(node: ast.Call) -> bool:
    """open(path, "w"/"a"...) or csv.reader over text in memory: not a read of an input."""
    modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
    modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
    return any(isinstance(m, str) and set(m) & set("wax") for m in modes)


def unguarded_reads() -> list[str]:
    found = []
    for path in sorted((ROOT / "ablation").rglob("*.py")):
        module = path.relative_to(ROOT / "ablation").as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or (name := _call_name(node)) is None:
                continue
            if name not in READS or _writes(node) or (module, "*") in ALLOWED_READS:
                continue
            if (module, name) not in ALLOWED_READS and not (name.startswith("csv.") and _over_memory(node)):
                found.append(f"{module}:{node.lineno} {name}")
    return found


def _over_memory(node: ast.Call) -> bool:
    """csv.reader(io.StringIO(...)): parsing text the reader already returned."""
    first = node.args[0] if node.args else None
    return isinstance(first, ast.Call) and _call_name(first) in ("io.StringIO", "StringIO")


def test_every_read_goes_through_the_one_reader():
    assert unguarded_reads() == []


def test_the_scan_finds_a_read_that_bypasses_the_reader(tmp_path, monkeypatch):
    fake = tmp_path / "ablation" / "core"
    fake.mkdir(parents=True)
    (fake / "sneaky.py").write_text("import json\nfrom pathlib import Path\n"
                                    "def f(p):\n    return json.loads(Path(p).read_text())\n"
                                    "def g(p):\n    with open(p, 'w') as h:\n        h.write('x')\n")
    monkeypatch.setattr("tests.core.test_reading.ROOT", tmp_path)
    assert unguarded_reads() == ["core/sneaky.py:4 json.loads", "core/sneaky.py:4 read_text"]


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: "/dev/zero", "is a device, not a regular file"),
    (lambda tmp: tmp, "is a folder, not a regular file"),
    (lambda tmp: (os.mkfifo(tmp / "pipe"), tmp / "pipe")[1], r"is a FIFO \(named pipe\), not a regular file"),
    (lambda tmp: tmp / "absent.yaml", "is missing"),
    (lambda tmp: (tmp / "big.yaml").write_bytes(b"a" * (reading.LIMITS["params"] + 1)) and tmp / "big.yaml",
     "is over 1,048,576 bytes"),
    (lambda tmp: (tmp / "latin.yaml").write_bytes(b"a: caf\xe9\n") and tmp / "latin.yaml",
     r"not UTF-8 text \(byte 6\)"),
])
def test_the_reader_refuses_what_is_not_a_small_regular_utf8_file(tmp_path, make, fragment):
    with pytest.raises(DataError, match=fragment) as raised:
        reading.read_text(make(tmp_path), "params", "pass a params file.")
    assert "\n" not in str(raised.value) and str(raised.value).endswith("Fix: pass a params file.")


@pytest.mark.parametrize("text, fragment", [
    ("1" + "0" * 400, "integer of 401 digits"),
    ("1" + "0" * 5000, "integer of 5,001 digits"),  # past Python's own 4,300-digit limit: no crash in the handler
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels"),
    ('{"a": ' * 65 + "1" + "}" * 65, "nested more than 64 levels"),
    ('{"accuracy": 0.5', "not valid JSON"),
])
def test_json_is_bounded_in_depth_and_integer_length(text, fragment):
    with pytest.raises(DataError, match=fragment) as raised:
        reading.parse_json(text, "train.json", "rerun it.")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("text, fragment", [
    ("train:\n  epochs: 1" + "0" * 400 + "\n", "integer of 401 digits"),
    ("a: " + "1" * 5000 + "\n", "integer of 5,000 digits"),
    ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nesting deeper than 64 levels"),
    ("".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v: 1\n", "nesting deeper than 64 levels"),
])
def test_yaml_is_bounded_in_depth_and_integer_length(tmp_path, text, fragment):
    from ablation.core.params import load_params
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ParamsError, match=fragment) as raised:
        load_params(tmp_path / "p.yaml")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("value, fragment", [
    ("1" + "0" * 400, "more than 30 digits"), ("1" + "0" * 5000, "over 4,300 digits"),
    ("[" * 3000 + "]" * 3000, "nested more than 64 levels"),  # whatever the recursion limit
])
def test_override_values_are_bounded(value, fragment):
    from ablation.core.params import load_params
    with pytest.raises(ParamsError, match=fragment) as raised:
        load_params(ROOT / "params.yaml", [f"train.epochs={value}"])
    assert "\n" not in str(raised.value)


def test_a_params_file_that_is_a_device_fifo_or_folder_is_refused_at_once(tmp_path):
    from ablation.core.params import load_params
    os.mkfifo(tmp_path / "fifo")
    for path, kind in (("/dev/zero", "a device"), (tmp_path / "fifo", "a FIFO"), (tmp_path, "a folder")):
        with pytest.raises(ParamsError, match=f"params: {path} is {kind}"):
            load_params(path)


def test_command_output_stops_at_its_bound(monkeypatch):
    monkeypatch.setitem(reading.LIMITS, "command", 1000)
    endless = reading.command_output(["yes"])
    assert endless.returncode == -1 and endless.stdout == "" and "over 1,000 bytes" in endless.stderr
    assert reading.command_output(["echo", "ok"]).stdout == "ok\n"


def test_an_experiment_file_over_the_bound_is_refused_and_never_copied(tmp_path, monkeypatch):
    from ablation.study import repo
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "metrics.json").write_bytes(b" " * 3_000_000 + b"{}")  # 3 MB, a few KB as a git object
    subprocess.run(["git", "add", "metrics.json"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setitem(reading.LIMITS, "record", 1_000_000)
    with pytest.raises(DataError, match=f"metrics.json of experiment commit {commit[:7]} is over 1,000,000 bytes"):
        repo.read_file(commit, "metrics.json")
    assert repo.read_file(commit, "absent.json") is None


def test_a_raw_record_is_read_with_the_same_bounds_as_the_commit_it_came_from(tmp_path, monkeypatch):
    from ablation.study import raw_records
    monkeypatch.setitem(reading.LIMITS, "record", 1000)
    (tmp_path / "big.json").write_bytes(b"{}" + b" " * 2000)
    (tmp_path / "latin.json").write_bytes(b'{"cpu": "caf\xe9"}')
    (tmp_path / "bomb.json.gz").write_bytes(gzip.compress(b" " * 5000))
    read = raw_records.raw_reader(tmp_path)
    for name, fragment in (("big.json", "over 1,000 bytes"), ("latin.json", "not UTF-8"),
                           ("bomb.json", "inflates to over 1,000 bytes")):
        with pytest.raises(UserError, match=fragment):
            read(name)


def test_csv_rows_keep_a_newline_inside_a_quoted_field():
    rows = reading.csv_rows('id,label,predicted\n1,"new\nline",cat\n')
    assert rows == [{"id": "1", "label": "new\nline", "predicted": "cat"}]
