"""Stage `score`: trade-off points and scores, the Sec. 4.2 grid and training-time tables, headline metrics."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.reports import score

if __name__ == "__main__":
    run_stage(lambda: score(profiled_params(), DEFAULT))
