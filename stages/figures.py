"""Stage `figures`: layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5), training curves, results/README.md."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.reports import figures

if __name__ == "__main__":
    run_stage(lambda: figures(profiled_params(), DEFAULT))
