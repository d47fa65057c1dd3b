"""Stage `figures`: layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5), training curves."""
import pandas as pd

from pipeline.accounting import accounting
from pipeline.figures import plot_layer_shares, plot_tradeoff, plot_training_curves, results_readme
from pipeline.params import load_params
from pipeline.results import curve_histories, write_curve_series
from pipeline.stage import ARTIFACTS, RESULTS, load_baselines, run_stage

FIGURES = RESULTS / "figures"
TABLES = RESULTS / "tables"
CUTOFF = 50  # P of the trade-off figure's envelope and AUC


def main() -> None:
    lam_norms = load_params(["figures"])["figures"]["curve_lam_norms"]
    plot_layer_shares({m: accounting(m)["layers"] for m in ("cnn7", "vgg11", "resnet18")}, FIGURES / "layer_shares")
    points = pd.read_csv(TABLES / "tradeoff_points.csv")
    plot_tradeoff(points, FIGURES / "tradeoff", cutoff=CUTOFF)
    baselines = load_baselines()
    histories = curve_histories(ARTIFACTS, baselines, lam_norms)
    plot_training_curves(histories, FIGURES / "training_curves")
    write_curve_series(histories, RESULTS / "plots" / "curves", setting=next(iter(baselines)))
    readme = results_readme(pd.read_csv(TABLES / "method_comparison.csv"),
                            (TABLES / "method_comparison.md").read_text(encoding="utf-8"), points, CUTOFF,
                            curve_setting=next(iter(baselines)), curve_lam_norms=lam_norms)
    (RESULTS / "README.md").write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    run_stage(main)
