"""`dvc plots show/diff` pages render offline, in a real browser (issue 15).

The page template plots/offline.html inlines Vega, Vega-Lite and vega-embed
(plots/make_template.py, from the npm packages pinned in plots/package-lock.json).
The browser tests run DVC on the committed results/*/plots/ CSVs, open the page
from a file URL in headless Chromium with no network (own network namespace
where `unshare -n` works, and an unreachable proxy either way) and count the
SVG marks Vega drew in each plot: one line per curve or run, one point per row.
"""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plots" / "offline.html"
PLOT_DIRS = {"tradeoff": ("series", 1.1), "curves": ("run", None)}  # plot dir: (colour column, x cut-off)


def _chromium() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


def _dvc() -> list[str]:
    exe = Path(sys.executable).parent / "dvc"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dvc"]


def _render(page: Path, tmp_path: Path) -> str:
    """The DOM of `page` after Vega has drawn, from headless Chromium with networking cut off."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium here: apt-get install -y chromium")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-n", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _plots(dom: str) -> dict[str, str]:
    """Each vega-embed div's DOM, by div id."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="([^"]+)" class="vega-embed', dom)]
    return {name: dom[start:end] for (start, name), (end, _) in zip(starts, [*starts[1:], (len(dom), "")])}


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _check_drawn(html: str, rows: list[dict], colour_by: str, revisions: int, cutoff: float | None) -> None:
    """The plot drew an SVG of non-zero size, one line per (curve, revision), one point per row and revision."""
    sizes = re.findall(r'<svg[^>]*class="marks"[^>]*width="([\d.]+)" height="([\d.]+)"', html)
    assert len(sizes) == 1 and all(float(v) > 100 for v in sizes[0]), sizes
    lines = re.findall(r'aria-roledescription="line mark" d="(M[^"]+)" stroke="([^"]+)"', html)
    series = {row[colour_by] for row in rows}
    assert len(lines) == revisions * len(series)
    assert len({stroke for _, stroke in lines}) == min(len(series), 10)  # one colour per curve / run (category10)
    visible = {row[colour_by] for row in rows if cutoff is None or float(row["energy_ratio"]) <= cutoff}
    joined = [d for d, _ in lines if "L" in d]  # a line through two or more points
    order = "lam_norm" if "lam_norm" in rows[0] else "epoch"  # a line joins the per-λ' means (or the epochs)
    multi = {s for s in visible if len({r[order] for r in rows if r[colour_by] == s}) > 1}
    assert len(joined) >= revisions * len(multi) > 0
    points = re.findall(r'aria-roledescription="point"', html)
    assert len(points) == revisions * len(rows)


@pytest.fixture(scope="module")
def series_files() -> dict[str, list[Path]]:
    files = {kind: sorted(ROOT.glob(f"results/*/plots/{kind}/*.csv")) for kind in PLOT_DIRS}  # default, claims
    assert all(files.values()), f"no committed plot CSVs: {files}"
    return files


def test_template_is_self_contained():
    """No CDN, no {scripts} (DVC would put its CDN <script> tags there), and .dvc/config selects it."""
    page = TEMPLATE.read_text(encoding="utf-8")
    assert page.count("{plot_divs}") == 1 and "{scripts}" not in page
    assert not re.search(r"<script[^>]+src=", page) and "cdn.jsdelivr" not in page
    for name in ("vega 5.", "vega-lite 5.", "vega-embed 6."):
        assert f"/*! {name}" in page
    assert "University of Washington Interactive Data Lab" in page  # BSD-3-Clause notice kept in the page
    assert re.search(r"html_template\s*=\s*\.\./plots/offline\.html", (ROOT / ".dvc" / "config").read_text())


def test_template_regenerates_byte_for_byte(tmp_path):
    """plots/offline.html and THIRD_PARTY_NOTICES.md are what make_template.py writes from the pinned packages."""
    if not (ROOT / "plots" / "node_modules" / "vega" / "package.json").exists():
        pytest.skip("plots/node_modules missing: npm ci --prefix plots --ignore-scripts")
    subprocess.run([sys.executable, str(ROOT / "plots" / "make_template.py"), "--out-dir", str(tmp_path)], check=True)
    for name in ("offline.html", "THIRD_PARTY_NOTICES.md"):
        assert (tmp_path / name).read_bytes() == (ROOT / "plots" / name).read_bytes(), f"{name} is stale"


def test_plots_show_renders_offline(tmp_path, series_files):
    out = tmp_path / "show"
    subprocess.run([*_dvc(), "plots", "show", "-o", str(out)], cwd=ROOT, check=True, capture_output=True)
    page = out / "index.html"
    assert "cdn.jsdelivr" not in page.read_text(encoding="utf-8")
    plots = _plots(_render(page, tmp_path))
    expected = {str(f.relative_to(ROOT)).replace("/", "_").replace(".", "_"): (kind, f)
                for kind, fs in series_files.items() for f in fs}
    assert sorted(plots) == sorted(expected)
    for name, (kind, path) in expected.items():
        colour_by, cutoff = PLOT_DIRS[kind]
        _check_drawn(plots[name], _rows(path), colour_by, revisions=1, cutoff=cutoff)
        assert path.stem in plots[name]  # the setting is named in the plot's header


def test_plots_diff_against_head_renders_offline(tmp_path, series_files):
    out = tmp_path / "diff"
    subprocess.run([*_dvc(), "plots", "diff", "HEAD", "-o", str(out)], cwd=ROOT, check=True, capture_output=True)
    plots = _plots(_render(out / "index.html", tmp_path))
    assert plots and all(re.search(r'aria-roledescription="point"', html) for html in plots.values())
    checked = 0
    for kind, files in series_files.items():
        for path in files:
            relative = str(path.relative_to(ROOT))
            at_head = subprocess.run(["git", "show", f"HEAD:{relative}"], cwd=ROOT, capture_output=True, text=True)
            if at_head.returncode or at_head.stdout != path.read_text(encoding="utf-8"):
                continue  # changed or new since HEAD: the counts below assume the same rows twice
            html = plots[relative.replace("/", "_").replace(".", "_")]
            colour_by, cutoff = PLOT_DIRS[kind]
            _check_drawn(html, _rows(path), colour_by, revisions=2, cutoff=cutoff)
            assert ">HEAD<" in html and ">workspace<" in html  # both revisions in the legend
            checked += 1
    if not checked:
        pytest.skip("every plot CSV differs from HEAD: only checked that the diff page drew points")
