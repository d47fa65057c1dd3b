"""Stage `train@KIND`: the Sec. 4.3 trade-off grid of one penalty (λ' × p × seeds per setting)."""
import sys

from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.steps import train

if __name__ == "__main__":
    run_stage(lambda: train(profiled_params(), DEFAULT, sys.argv[1]))
