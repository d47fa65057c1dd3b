"""Stage `score`: trade-off points and scores, the Sec. 4.2 grid and training-time tables, headline metrics."""
import json

import pandas as pd

from pipeline.fileio import write_atomic
from pipeline.runs.params import load_params
from pipeline.runs.results import headline, note_skipped, tradeoff_points, warn_skipped, write_plot_series
from pipeline.runs.stage import ARTIFACTS, HEADLINE, RESULTS, load_baselines, run_stage
from pipeline.scoring import score_curves
from pipeline.tables import comparison_best, grid_table, method_comparison, time_table, write_table

TABLES = RESULTS / "tables"


def main() -> None:
    cutoffs = load_params(["score"])["score"]["cutoffs"]
    baselines = load_baselines()
    skipped = warn_skipped(baselines)  # settings whose baseline diverged: no energy ratios, no curves
    points = tradeoff_points(ARTIFACTS, baselines)
    write_table(points, TABLES / "tradeoff_points", floatfmt=".4g")
    scored = points[~points["setting"].isin(skipped)]
    scores = score_curves(scored, cutoffs)
    write_table(note_skipped(scores, skipped), TABLES / "tradeoff_scores", floatfmt=".3f")
    comparison = method_comparison(scores)
    write_table(note_skipped(comparison, skipped), TABLES / "method_comparison", best=comparison_best(comparison),
                floatfmt=".3f")
    write_table(grid_table(pd.read_csv(ARTIFACTS / "grid" / "points.csv")), TABLES / "grid", floatfmt=".3g")
    write_table(time_table(points[points["method"] != "ann2snn"]), TABLES / "training_time", floatfmt=".3f")
    write_plot_series(scored, RESULTS / "plots" / "tradeoff")
    write_atomic(HEADLINE, json.dumps(headline(scores, baselines), indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)
