"""Stage `figures`: layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5), training curves."""
import pandas as pd

from pipeline.accounting import accounting
from pipeline.figures import plot_layer_shares, plot_tradeoff, plot_training_curves
from pipeline.params import load_params
from pipeline.results import curve_histories, write_curve_series
from pipeline.stage import ARTIFACTS, RESULTS, load_baselines, run_stage

FIGURES = RESULTS / "figures"


def main() -> None:
    lam_norms = load_params(["figures"])["figures"]["curve_lam_norms"]
    plot_layer_shares({m: accounting(m)["layers"] for m in ("cnn7", "vgg11", "resnet18")}, FIGURES / "layer_shares")
    points = pd.read_csv(RESULTS / "tables" / "tradeoff_points.csv")
    plot_tradeoff(points, FIGURES / "tradeoff", cutoff=50)
    baselines = load_baselines()
    histories = curve_histories(ARTIFACTS, baselines, lam_norms)
    plot_training_curves(histories, FIGURES / "training_curves")
    write_curve_series(histories, RESULTS / "plots" / "curves", setting=next(iter(baselines)))


if __name__ == "__main__":
    run_stage(main)
