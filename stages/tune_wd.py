"""Stage `tune_wd`: baseline runs (λ' = 0) over a λ_WD sweep; the best validation accuracy wins."""
import json

from pipeline.fileio import write_atomic
from pipeline.runs.params import load_params
from pipeline.runs.plans import choose_baseline, tune_wd_plan, warn_skipped
from pipeline.runs.stage import BASELINES, SPLITS, run_plan, run_stage, write_points


def main() -> None:
    params = load_params(["settings", "compute", "data", "train", "tune_wd"])
    plan = tune_wd_plan(params["settings"], params, SPLITS)
    metrics = run_plan(plan, params["compute"], BASELINES.parent)
    baselines = choose_baseline(plan, metrics)
    warn_skipped(baselines)
    write_atomic(BASELINES, json.dumps(baselines, indent=2))
    write_points(plan, metrics, baselines, BASELINES.parent / "points.csv")


if __name__ == "__main__":
    run_stage(main)
