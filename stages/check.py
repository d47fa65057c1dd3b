"""Stage `check@ITEM`: the item's params (params.yaml with its profile, or profiles/ITEM.yaml) validated whole,
the run store probed for writability, each section written to artifacts/ITEM/params/ before anything trains."""
from pipeline.runs.harness import stage_main

if __name__ == "__main__":
    stage_main("experiments", "check", checked=False)
