"""What DVC shows in a fresh clone, before anything runs: the committed headline
metrics of the shipped arm and of every committed study, one row per experiment in
`dvc exp show`, and plots with one colour per arm and a title naming the dataset,
drawn by headless Chromium offline from the page .dvc/config names."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

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


def offline_page(browser_page: Path, tmp_path: Path):
    """A function that opens `browser_page` (a page `dvc plots` wrote) in headless
    Chromium with every host name unresolvable, so nothing loads from the network,
    and each chart drawn as SVG so that its legend is in the DOM."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("needs Chromium (.ci/run installs Debian's chromium)")
    page = browser_page.read_text()
    assert not re.search(r"<script src=", page), "the page loads a script from elsewhere"
    svg = "<script>const embed = window.vegaEmbed; window.vegaEmbed = (el, spec, opt) => " \
          "embed(el, spec, {...opt, renderer: 'svg'});</script>\n"
    head_end = page.rindex("</head>")  # after the inline Vega builds, before the charts
    browser_page.write_text(page[:head_end] + svg + page[head_end:])

    def chromium(*args: str) -> str:
        done = subprocess.run([browser, *CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", *args,
                               browser_page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout
    return chromium


def charts_of(dom: str) -> dict[str, str]:
    """{chart div id: its markup} of a drawn plots page."""
    return dict(zip(*[iter(re.split(r'<div id="([^"]+)"', dom)[1:])] * 2))


def legend(chart: str, title: str) -> dict[str, str]:
    """{label: stroke colour} of the legend titled `title` in a drawn chart."""
    (block,) = re.findall(rf"aria-label=\"Symbol legend titled '{re.escape(title)}'.*?role-legend-title", chart, re.S)
    return dict((label, colour) for colour, label in
                re.findall(r'role-legend-symbol.*?stroke="([^"]+)".*?role-legend-label.*?<text[^>]*>([^<]*)</text>',
                           block, re.S))


def test_plots_page_draws_offline_one_legend_entry_per_arm(clone, tmp_path):
    from PIL import Image
    dvc(clone, "plots", "show", "-o", str(tmp_path / "shown"))
    chromium = offline_page(tmp_path / "shown" / "index.html", tmp_path)
    charts = charts_of(chromium("--dump-dom"))
    for study in studies(clone):
        view = yaml.safe_load((clone / "reports" / study / "dvc.yaml").read_text())
        for definition in view["plots"]:
            (path, props), = definition.items()
            chart = charts[re.sub(r"[^\w-]", "_", f"reports/{study}/{path}")]
            assert sorted(legend(chart, "arm")) == sorted(props["y"]), (study, path)  # one entry, one colour, per arm
            assert "<path" in chart.split("role-legend", 1)[0]  # its lines were drawn
    screenshot = tmp_path / "plots.png"
    chromium("--window-size=1200,2600", f"--screenshot={screenshot}")
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").resize((300, 650)).getcolors(maxcolors=300 * 650)
    assert len(colours) > 50  # a drawn page, not a blank one


def test_plots_diff_gives_each_revision_one_colour_in_every_chart(tmp_path):
    """`dvc plots diff` of two revisions of the arm: each revision (an arm, in a diff
    of experiments) has its own colour in the legend, the same in the loss and the
    accuracy chart, and every study chart keeps one colour per arm."""
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(work)], check=True)
    for plot in ("loss", "accuracy"):  # the workspace: another revision of the arm's curves
        csv_file = work / "reports" / "plots" / plot / "cifar10.csv"
        header, *rows = csv_file.read_text().splitlines()
        csv_file.write_text("\n".join([header, *(",".join([row.split(",")[0], *(str(float(v) * 1.1) for v in
                                                                              row.split(",")[1:])]) for row in rows)]))
    dvc(work, "plots", "diff", "HEAD", "-o", str(tmp_path / "diff"))
    charts = charts_of(offline_page(tmp_path / "diff" / "index.html", tmp_path)("--dump-dom"))
    loss, accuracy = (legend(charts[f"reports_plots_{plot}_cifar10_csv"], "revision (arm)")
                      for plot in ("loss", "accuracy"))
    assert set(loss) == {"HEAD", "workspace"} and loss["HEAD"] != loss["workspace"]
    assert accuracy == loss
    by_study = {}  # {study: [{arm: colour} of each of its charts]}
    for name, chart in charts.items():
        if match := re.fullmatch(r"reports_(.+)_plots_(training|validation)_error_\w+_csv", name):
            by_study.setdefault(match.group(1), []).append(legend(chart, "arm"))
    assert set(by_study) == set(studies(work))
    for study, legends in by_study.items():
        assert len(legends) == 2 and legends[0] == legends[1], study  # an arm keeps its colour across charts
        assert len(set(legends[0].values())) == len(legends[0]), study  # and no two arms share one


def test_dvc_is_set_to_the_committed_offline_page():
    from ablation.core.declarations import OFFLINE_PAGE
    from ablation.report import plots_page
    config = (ROOT / ".dvc" / "config").read_text()
    assert re.search(rf"html_template = {re.escape(OFFLINE_PAGE.relative_to('.dvc').as_posix())}\n", config)
    builds = plots_page.cdn_builds()
    if not shutil.which("npm"):
        pytest.skip("needs npm to pack the Vega builds")
    try:
        code = {package: plots_page.npm_build(package, version, ROOT / plots_page.BUILD_CACHE)
                for package, version in builds.items()}
    except subprocess.CalledProcessError as error:
        pytest.skip(f"npm could not pack Vega: {error.stderr.strip()[-300:]}")
    assert (ROOT / OFFLINE_PAGE).read_text() == plots_page.page_html(builds, code)  # current with DVC's versions
