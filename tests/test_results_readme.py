"""results/README.md shows the results (issue 15): figures embedded, headline table, a paragraph per figure."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipeline.figures import results_readme
from pipeline.runs.params import load_params

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "default"
TABLES = RESULTS / "tables"


def _committed_inputs() -> tuple:
    comparison = pd.read_csv(TABLES / "method_comparison.csv")
    comparison_md = (TABLES / "method_comparison.md").read_text(encoding="utf-8")
    points = pd.read_csv(TABLES / "tradeoff_points.csv")
    (curves,) = sorted((RESULTS / "plots" / "curves").glob("*.csv"))  # one file, named after its setting
    lam_norms = load_params(["figures"], ROOT / "params.yaml")["figures"]["curve_lam_norms"]
    return comparison, comparison_md, points, curves.stem, lam_norms


def test_readme_embeds_figures_table_and_a_paragraph_per_figure():
    comparison, comparison_md, points, setting, lam_norms = _committed_inputs()
    text = results_readme(comparison, comparison_md, points, 50, curve_setting=setting, curve_lam_norms=lam_norms)
    assert comparison_md.strip() in text
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert sorted(images) == sorted(f"figures/{p.name}" for p in (RESULTS / "figures").glob("*.png"))
    for image in images:
        assert (RESULTS / image).is_file()
        after = text.split(f"]({image})", 1)[1].lstrip("\n").split("\n\n", 1)[0]
        assert len(after.split()) > 20, f"no paragraph after {image}"
    best = comparison.loc[comparison["AUC(50)"].idxmax()]
    assert f"the largest AUC(50) is {best['curve']}'s ({best['AUC(50)']:.1f})" in text
    above = int((points["energy_ratio"] > 1.1).sum())
    assert f"the {above} costlier run(s)" in text
    assert f"λ' = {', '.join(f'{lam:g}' for lam in lam_norms)}" in text and f"`{setting}`" in text


def test_readme_without_runs_still_renders():
    text = results_readme(pd.DataFrame(), "", pd.DataFrame(), 50)
    assert "figures/tradeoff.png" in text and "largest AUC" not in text and "costlier" not in text


def test_committed_readme_is_what_the_figures_stage_writes():
    comparison, comparison_md, points, setting, lam_norms = _committed_inputs()
    expected = results_readme(comparison, comparison_md, points, 50, curve_setting=setting,
                              curve_lam_norms=lam_norms)
    assert (RESULTS / "README.md").read_text(encoding="utf-8") == expected, \
        "results/README.md is stale: python stages/figures.py (or dvc repro figures) rewrites it"
