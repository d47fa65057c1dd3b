"""Stage `grid`: the Sec. 4.2 grid — Ω_syn (p = 1) over raw λ × λ_WD × B_BN, against the tuned baseline."""
from pipeline.runs.params import load_params
from pipeline.runs.plans import grid_plan
from pipeline.runs.stage import ARTIFACTS, SPLITS, load_baselines, run_plan, run_stage, write_points


def main() -> None:
    params = load_params(["settings", "compute", "data", "train", "grid"])
    plan = grid_plan(params["settings"], params, SPLITS)
    out = ARTIFACTS / "grid"
    write_points(plan, run_plan(plan, params["compute"], out), load_baselines(), out / "points.csv")


if __name__ == "__main__":
    run_stage(main)
