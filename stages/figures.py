"""Stage `figures`: layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5), training curves."""
import pandas as pd

from pipeline.accounting import accounting
from pipeline.figures import plot_layer_shares, plot_tradeoff, plot_training_curves
from pipeline.runs.params import load_params
from pipeline.runs.results import curve_histories, warn_skipped, write_curve_series
from pipeline.runs.stage import ARTIFACTS, RESULTS, load_baselines, run_stage

FIGURES = RESULTS / "figures"


def main() -> None:
    figures = load_params(["figures"])["figures"]
    plot_layer_shares({m: accounting(m)["layers"] for m in figures["models"]}, FIGURES / "layer_shares")
    baselines = load_baselines()
    points = pd.read_csv(RESULTS / "tables" / "tradeoff_points.csv")
    points = points[~points["setting"].isin(warn_skipped(baselines))]  # diverged baseline: no energy ratios
    plot_tradeoff(points, FIGURES / "tradeoff", cutoff=figures["cutoff"])
    histories = curve_histories(ARTIFACTS, baselines, figures["curve_lam_norms"])
    plot_training_curves(histories, FIGURES / "training_curves")
    write_curve_series(histories, RESULTS / "plots" / "curves")


if __name__ == "__main__":
    run_stage(main)
