"""Stage `check@ITEM`: the item's params (params.yaml with its profile, or profiles/ITEM.yaml) validated whole,
the run store probed for writability, each section written to artifacts/ITEM/params/ before anything trains."""
from pipeline.runs.experiments import check
from pipeline.runs.harness import item_argument, run_stage

if __name__ == "__main__":
    layout = item_argument()
    run_stage(lambda: check(layout))
