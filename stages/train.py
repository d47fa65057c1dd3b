"""Stage `train@ITEM`: the Sec. 4.3 trade-off runs of every penalty in penalty.kinds (λ' × p × seeds per
setting)."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("experiments", "train")
