"""What DVC shows in a fresh clone, before anything runs: the committed headline
metrics of the shipped arm and of every committed study, one row per experiment in
`dvc exp show`, and plots with one colour per arm and a title naming the dataset,
drawn by headless Chromium with Vega served locally."""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

# dvc plots show's page loads Vega from a CDN; the test serves the same versions locally.
CDN_SCRIPT = re.compile(r"https://cdn\.jsdelivr\.net/npm/(vega(?:-lite|-embed)?)@([0-9.]+)")
CHROMIUM = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--virtual-time-budget=20000")  # time for every vegaEmbed to draw


def studies(clone: Path) -> list[str]:
    """The committed studies (a local, uncommitted one is not in the clone)."""
    return sorted(path.parent.name for path in (clone / "reports").glob("*/study.json"))


def dvc(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(clone.parent / "dvc-site")}
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=clone, capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stderr[-2000:]}"
    assert "failed to load" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of the last commit, as a new user gets it."""
    path = tmp_path_factory.mktemp("views") / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True)
    return path


def test_metrics_show_and_diff_read_every_committed_metric(clone):
    shown = json.loads(dvc(clone, "metrics", "show", "--json").stdout)
    (workspace,) = shown.values()  # DVC names the workspace ""
    files = workspace["data"]
    assert {"cifar10-cpu", "cats-vs-dogs-cpu"} <= set(studies(clone))
    expected = {"reports/metrics.json", *(f"reports/{study}/metrics.json" for study in studies(clone))}
    assert set(files) == expected and not any("error" in entry for entry in files.values())
    arm = files["reports/metrics.json"]["data"]["cifar10"]
    assert 0 < arm["test_accuracy"] < 1 and arm["test_accuracy"] == round(arm["test_accuracy"], 4)
    for study in studies(clone):
        numbers = files[f"reports/{study}/metrics.json"]["data"]
        assert all(set(by_dataset) <= {"cifar10", "cats_vs_dogs"} for by_dataset in numbers.values()), study
    assert json.loads(dvc(clone, "metrics", "diff", "--json").stdout) == {}  # nothing changed since the commit


def test_exp_show_has_one_row_per_experiment_with_only_headline_metrics(clone):
    rows = json.loads(dvc(clone, "exp", "show", "--json").stdout)
    assert [row["rev"] for row in rows] == ["workspace", rows[1]["rev"]] and len(rows) == 2  # no experiments yet
    data = rows[0]["data"]
    assert set(data["metrics"]) == {"reports/metrics.json",
                                    *(f"reports/{study}/metrics.json" for study in studies(clone))}
    assert {"model", "train", "datasets"} <= set(data["params"]["params.yaml"]["data"])


def test_plots_show_one_colour_per_arm_and_name_study_and_dataset(clone):
    shown = json.loads(dvc(clone, "plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown.get("errors")
    plots = shown["data"]
    assert all(plots[name] for name in plots), [name for name in plots if not plots[name]]  # no empty placeholder
    for study in studies(clone):
        view = yaml.safe_load((clone / "reports" / study / "dvc.yaml").read_text())
        for definition in view["plots"]:
            (path, props), = definition.items()
            content = plots[f"reports/{study}/{path}"][0]["content"]
            dataset = Path(path).stem
            assert content["title"] == props["title"] and f"{study}, {dataset}: " in props["title"]
            assert content["encoding"]["color"]["field"] == "field"  # the line: one colour per arm
            arms = {point["field"] for point in content["data"]["values"]}
            assert arms == set(props["y"]) and content["encoding"]["y"]["title"] != "y"
    pipeline = plots["reports/plots/loss/cifar10.csv"][0]["content"]
    assert pipeline["encoding"]["y"]["scale"] == {"type": "log"}
    assert {point["field"] for point in pipeline["data"]["values"]} == {"train_loss", "val_loss"}


def test_dvc_plots_output_is_ignored():
    ignored = subprocess.run(["git", "check-ignore", "dvc_plots/index.html"], cwd=ROOT, capture_output=True)
    assert ignored.returncode == 0


def vega_scripts(page: str, folder: Path) -> dict[str, str]:
    """{CDN address: local file} for the Vega builds `page` loads, packed from the
    npm registry into .cache/vega/ once."""
    local = {}
    for match in CDN_SCRIPT.finditer(page):
        package, version = match.groups()
        build = ROOT / ".cache" / "vega" / f"{package}-{version}.min.js"
        if not build.is_file():
            build.parent.mkdir(parents=True, exist_ok=True)
            packed = subprocess.run(["npm", "pack", "--silent", f"{package}@{version}", "--pack-destination",
                                     str(build.parent)], capture_output=True, text=True)
            if packed.returncode:
                pytest.skip(f"npm could not fetch {package}@{version}: {packed.stderr.strip()[-300:]}")
            with tarfile.open(build.parent / packed.stdout.strip().splitlines()[-1]) as archive:
                build.write_bytes(archive.extractfile(f"package/build/{package}.min.js").read())
        shutil.copy(build, folder / build.name)
        local[match.group(0)] = build.name
    return local


@pytest.fixture
def plots_page(clone, tmp_path):
    """`dvc plots show`'s page with its Vega builds served from localhost, each chart
    drawn as SVG so that its legend is in the DOM."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser or not shutil.which("npm"):
        pytest.skip("needs Chromium and npm (.ci/run installs Debian's chromium)")
    folder = tmp_path / "dvc_plots"
    dvc(clone, "plots", "show", "-o", str(folder))
    page = (folder / "index.html").read_text()
    for address, name in vega_scripts(page, folder).items():
        page = page.replace(address, name)
    svg = "<script>const embed = window.vegaEmbed; window.vegaEmbed = (el, spec, opt) => " \
          "embed(el, spec, {...opt, renderer: 'svg'});</script>"
    page = re.sub(r'(<script src="vega-embed-[0-9.]+\.min\.js"></script>)', rf"\1\n{svg}", page)
    (folder / "index.html").write_text(page)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"

    def chromium(*args: str) -> str:
        done = subprocess.run([browser, *CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", *args, url],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout
    yield chromium
    server.shutdown()


def test_plots_page_draws_one_legend_entry_per_arm(clone, plots_page, tmp_path):
    from PIL import Image
    dom = plots_page("--dump-dom")
    charts = dict(zip(*[iter(re.split(r'<div id="([^"]+)"', dom)[1:])] * 2))  # {div id: its markup}
    for study in studies(clone):
        view = yaml.safe_load((clone / "reports" / study / "dvc.yaml").read_text())
        for definition in view["plots"]:
            (path, props), = definition.items()
            chart = charts[re.sub(r"[^\w-]", "_", f"reports/{study}/{path}")]
            legends = re.findall(r'role-legend-label.*?</g></g>', chart, re.S)
            entries = [label for legend in legends for label in re.findall(r"<text[^>]*>([^<]*)</text>", legend)]
            assert sorted(set(entries) & set(props["y"])) == sorted(props["y"]), (study, path, entries)
            assert all(entries.count(arm) == 1 for arm in props["y"]), entries  # one entry, one colour, per arm
            assert "<path" in chart.split("role-legend", 1)[0]  # its lines were drawn
    screenshot = tmp_path / "plots.png"
    plots_page("--window-size=1200,2600", f"--screenshot={screenshot}")
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").resize((300, 650)).getcolors(maxcolors=300 * 650)
    assert len(colours) > 50  # a drawn page, not a blank one
