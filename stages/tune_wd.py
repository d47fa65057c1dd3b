"""Stage `tune_wd`: baseline runs (λ' = 0) over a λ_WD sweep; the best validation accuracy wins."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.steps import tune_wd

if __name__ == "__main__":
    run_stage(lambda: tune_wd(profiled_params(), DEFAULT))
