"""Stage `split`: the seeded train/validation(/test) split of every dataset in use (spec §5)."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.steps import split

if __name__ == "__main__":
    run_stage(lambda: split(profiled_params(), DEFAULT))
