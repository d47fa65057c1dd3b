"""Stage `split@ITEM`: the seeded train/validation(/test) split of every dataset in use (spec §5)."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("experiments", "split")
