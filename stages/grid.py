"""Stage `grid`: the Sec. 4.2 grid — Ω_syn (p = 1) over raw λ × λ_WD × B_BN, each with 0, energies relative to
the λ = λ_WD = B_BN = 0 run of the same setting and seed."""
from pipeline.runs.params import load_params
from pipeline.runs.plans import grid_plan, grid_references, point_row
from pipeline.runs.stage import ARTIFACTS, SPLITS, run_plan, run_stage, write_rows


def main() -> None:
    params = load_params(["settings", "compute", "data", "train", "grid"])
    plan = grid_plan(params["settings"], params, SPLITS)
    out = ARTIFACTS / "grid"
    metrics = run_plan(plan, params["compute"], out)
    write_rows([point_row(name, cfg, m, reference)
                for (name, cfg), m, reference in zip(plan, metrics, grid_references(plan, metrics))],
               out / "points.csv")


if __name__ == "__main__":
    run_stage(main)
