"""Stage `figures@ITEM`: layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5), training curves,
results/ITEM/README.md."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("reporting", "figures")
