"""Stage `figures`: layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5), training curves, results/README.md."""
import pandas as pd

from pipeline.accounting import accounting
from pipeline.figures import plot_layer_shares, plot_tradeoff, plot_training_curves, results_readme
from pipeline.fileio import write_atomic
from pipeline.runs.params import load_params
from pipeline.runs.results import curve_histories, warn_skipped, write_curve_series
from pipeline.runs.stage import ARTIFACTS, RESULTS, load_baselines, run_stage

FIGURES = RESULTS / "figures"
TABLES = RESULTS / "tables"


def main() -> None:
    figures = load_params(["figures"])["figures"]
    plot_layer_shares({m: accounting(m)["layers"] for m in figures["models"]}, FIGURES / "layer_shares")
    baselines = load_baselines()
    setting = next(iter(baselines))
    points = pd.read_csv(TABLES / "tradeoff_points.csv")
    points = points[~points["setting"].isin(warn_skipped(baselines))]  # diverged baseline: no energy ratios
    plot_tradeoff(points, FIGURES / "tradeoff", cutoff=figures["cutoff"])
    histories = curve_histories(ARTIFACTS, baselines, figures["curve_lam_norms"])
    plot_training_curves(histories, FIGURES / "training_curves")
    write_curve_series(histories, RESULTS / "plots" / "curves", setting=setting)
    readme = results_readme(pd.read_csv(TABLES / "method_comparison.csv"),
                            (TABLES / "method_comparison.md").read_text(encoding="utf-8"), points, figures["cutoff"],
                            curve_setting=setting, curve_lam_norms=figures["curve_lam_norms"])
    write_atomic(RESULTS / "README.md", readme)


if __name__ == "__main__":
    run_stage(main)
