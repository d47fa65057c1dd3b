"""results/<folder>/README.md shows the results (issue 15): figures embedded, headline table, a paragraph per
figure — for every item of the pipeline."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.figures import results_readme
from pipeline.runs.params import resolve

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["default", "claims", "fmnist"]


def _committed_inputs(folder: str) -> tuple:
    results = ROOT / "results" / folder
    tables = results / "tables"
    comparison = pd.read_csv(tables / "method_comparison.csv")
    comparison_md = (tables / "method_comparison.md").read_text(encoding="utf-8")
    points = pd.read_csv(tables / "tradeoff_points.csv")
    (curves,) = sorted((results / "plots" / "curves").glob("*.csv"))  # one file, named after its setting
    params = resolve(folder, ROOT / "params.yaml")
    return results, comparison, comparison_md, points, curves.stem, params["figures"]["curve_lam_norms"]


def _written(folder: str) -> str:
    """What the figures step writes for the committed `folder`."""
    results, comparison, comparison_md, points, setting, lam_norms = _committed_inputs(folder)
    return results_readme(comparison, comparison_md, points, 50, curve_setting=setting, curve_lam_norms=lam_norms,
                          profile=folder, folder=folder, paper=(results / "tables" / "paper_comparison.md").is_file())


@pytest.mark.parametrize("folder", FOLDERS)
def test_readme_embeds_figures_table_and_a_paragraph_per_figure(folder):
    results, comparison, comparison_md, points, setting, lam_norms = _committed_inputs(folder)
    text = _written(folder)
    assert comparison_md.strip() in text
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert sorted(images) == sorted(f"figures/{p.name}" for p in (results / "figures").glob("*.png"))
    for image in images:
        assert (results / image).is_file()
        after = text.split(f"]({image})", 1)[1].lstrip("\n").split("\n\n", 1)[0]
        assert len(after.split()) > 20, f"no paragraph after {image}"
    for name, rows in comparison.groupby("setting"):
        best = rows.loc[rows["AUC(50)"].idxmax()]
        assert f"In `{name}` the largest AUC(50) is {best['curve']}'s ({best['AUC(50)']:.1f})" in text
    above = int((points["energy_ratio"] > 1.1).sum())
    assert f"the {above} costlier run(s)" in text
    assert f"λ' = {', '.join(f'{lam:g}' for lam in lam_norms)}" in text and f"`{setting}`" in text


def test_readme_without_runs_still_renders():
    text = results_readme(pd.DataFrame(), "", pd.DataFrame(), 50)
    assert "figures/tradeoff.png" in text and "largest AUC" not in text and "costlier" not in text


@pytest.mark.parametrize("folder", FOLDERS)
def test_committed_readme_is_what_the_figures_step_writes(folder):
    results = ROOT / "results" / folder
    assert (results / "README.md").read_text(encoding="utf-8") == _written(folder), \
        f"results/{folder}/README.md is stale: dvc repro figures@{folder} rewrites it"
