"""The README and the docs site cannot go stale unnoticed: the site builds with
`mkdocs build --strict` (a broken link or a page missing from nav fails), the README
stays a front door (at most 200 lines), and every command in a ```bash block of
either is accepted by its tool: `ablate` and `dvc` commands by their own argument
parsers, `python -m` modules exist, and no other tool appears unlisted."""
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
ASSIGNMENT = re.compile(r"[A-Z_]+=\S*")
# Tools whose flags are not checked here: installers, git, containers, cluster set-up.
UNCHECKED = {"pip", "git", "docker", "ray", "export", "cd", "mkdocs"}


def commands(text: str) -> list[list[str]]:
    """Each command of each ```bash block: continuation lines joined, comments and
    leading VAR=value assignments dropped, `a && b` split in two."""
    found = []
    for block in BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            for part in filter(None, (p.strip() for p in line.split("&&"))):
                words = shlex.split(part)
                while words and ASSIGNMENT.fullmatch(words[0]):
                    words = words[1:]
                if words:
                    found.append(words)
    return found


def refusal(words: list[str]) -> str | None:
    """Why the command's tool would refuse it, or None."""
    tool, args = words[0], words[1:]
    if tool == "ablate":
        from ablation.cli.main import COMMANDS, parser_of
        if args and args[0] in ("-h", "--help"):
            return None
        if not args or args[0] not in COMMANDS:
            return f"no ablate command {args[:1]}"
        try:
            parser_of(args[0]).parse_args(args[1:])
        except SystemExit:
            return "ablate's parser refused it"
        return None
    if tool == "dvc":
        from dvc.cli import parse_args
        try:
            parse_args(args)
        except (SystemExit, Exception):  # DvcParserError, or its logger's error where logging is captured
            return "dvc's parser refused it"
        return None
    if tool == "python" and args[:1] == ["-m"]:
        return None if importlib.util.find_spec(args[1]) else f"no module {args[1]}"
    return None if tool in UNCHECKED else f"{tool} is not a tool this test knows"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_shown_is_accepted_by_its_tool(page, capsys):
    shown = commands(page.read_text())
    problems = [f"{' '.join(words)}: {why}" for words in shown if (why := refusal(words))]
    assert problems == [], capsys.readouterr().err[-2000:]


def test_a_refused_command_is_caught():
    assert refusal(["ablate", "study", "--until-decidd"]) == "ablate's parser refused it"
    assert refusal(["dvc", "metrics", "show", "--targets", "reports/metrics.json"]) == "dvc's parser refused it"
    assert refusal(["ablate", "stduy"]) == "no ablate command ['stduy']"
    assert commands("```bash\nX=1 ablate study \\\n  --dry-run   # a comment\n```\n") == [
        ["ablate", "study", "--dry-run"]]


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_docs_build_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "own-network" / "index.html").exists()


def test_every_docs_page_is_in_the_nav():
    import yaml
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {page for entry in nav for page in entry.values()}
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}
    assert all(Path(ROOT / "docs" / page).exists() for page in listed)
