"""The page `dvc plots show` and `dvc plots diff` write, made to open offline.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so without the
network its charts are blank. This page carries the same builds inline (the
versions DVC's renderer names, packed from the npm registry), and `.dvc/config`'s
`plots.html_template` points DVC at it. Regenerate it after a DVC upgrade:

    python -m ablation.report.plots_page
"""
from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

from dvc_render.html import PAGE_HTML
from dvc_render.vega import VegaRenderer

from ablation.core import atomic_files
from ablation.core.declarations import OFFLINE_PAGE

CDN_SCRIPT = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/(vega(?:-lite|-embed)?)@([0-9.]+)"></script>')
BUILD_CACHE = Path(".cache", "vega")


def cdn_builds(scripts: str = VegaRenderer.SCRIPTS) -> dict[str, str]:
    """{npm package: version} of the Vega builds DVC's page loads, in load order."""
    builds = dict(CDN_SCRIPT.findall(scripts))
    if set(builds) != {"vega", "vega-lite", "vega-embed"}:
        raise RuntimeError(f"DVC's page no longer loads Vega as this module expects: {scripts.strip()}")
    return builds


def npm_build(package: str, version: str, cache: Path = BUILD_CACHE) -> str:
    """The minified browser build of `package@version`, packed from npm into `cache` once."""
    build = cache / f"{package}-{version}.min.js"
    if not build.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(["npm", "pack", "--silent", f"{package}@{version}", "--pack-destination", str(cache)],
                                capture_output=True, text=True, check=True)
        with tarfile.open(cache / packed.stdout.strip().splitlines()[-1]) as archive:
            atomic_files.write_text(build, archive.extractfile(f"package/build/{package}.min.js").read().decode())
    return build.read_text()


def page_html(builds: dict[str, str], code: dict[str, str]) -> str:
    """DVC's page with `code` ({package: its build}) inline in place of its CDN
    scripts. The `{scripts}` placeholder is left out, so DVC adds no CDN script."""
    for package, text in code.items():
        if "</script" in text or re.search(r"\{(scripts|plot_divs|refresh_tag)\}", text):
            raise RuntimeError(f"{package}'s build holds text the page cannot carry inline")
    inline = "\n".join(f"<!-- {package}@{builds[package]} from the npm registry (BSD-3-Clause) -->\n"
                       f"<script>{code[package]}</script>" for package in builds)
    return PAGE_HTML.replace("{scripts}", inline)


def write(root: Path = Path(".")) -> Path:
    builds = cdn_builds()
    page = page_html(builds, {package: npm_build(package, version, root / BUILD_CACHE)
                              for package, version in builds.items()})
    atomic_files.write_text(root / OFFLINE_PAGE, page)
    return root / OFFLINE_PAGE


if __name__ == "__main__":
    written = write()
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB): "
          f"{', '.join(f'{p}@{v}' for p, v in cdn_builds().items())} inline", file=sys.stderr)
