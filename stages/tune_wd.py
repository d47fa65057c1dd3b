"""Stage `tune_wd@ITEM`: baseline runs (λ' = 0) over a λ_WD sweep; the best validation accuracy wins."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("experiments", "tune_wd")
