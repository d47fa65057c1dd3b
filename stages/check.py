"""Stage `check`: the whole params.yaml (profile applied) validated, and the run store probed for
writability, before any stage trains."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.steps import check

if __name__ == "__main__":
    run_stage(lambda: check(profiled_params(), DEFAULT))
