"""Stage `score@ITEM`: trade-off points and scores, the Sec. 4.2 grid and training-time tables, the claims'
verdicts, headline metrics, environment and verify sample."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("reporting", "score")
