"""Stage `grid@ITEM`: the Sec. 4.2 grid — Ω_syn (p = 1) over raw λ × λ_WD × B_BN, each with 0."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("experiments", "grid")
