"""Stage `train@KIND`: the Sec. 4.3 trade-off grid of one penalty (λ' × p × seeds per setting)."""
import sys

from pipeline.runs.params import load_params
from pipeline.runs.plans import penalty_plan
from pipeline.runs.stage import ARTIFACTS, SPLITS, load_baselines, run_plan, run_stage, write_points


def main() -> None:
    kind = sys.argv[1]
    params = load_params(["settings", "compute", "data", "train", "penalty"])
    baselines = load_baselines()
    plan = penalty_plan(params["settings"], params, SPLITS, kind, baselines)
    out = ARTIFACTS / "train" / kind
    write_points(plan, run_plan(plan, params["compute"], out), baselines, out / "points.csv")


if __name__ == "__main__":
    run_stage(main)
