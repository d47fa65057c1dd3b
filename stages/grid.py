"""Stage `grid`: the Sec. 4.2 grid — Ω_syn (p = 1) over raw λ × λ_WD × B_BN, each with 0, energies relative to
the λ = λ_WD = B_BN = 0 run of the same setting and seed."""
from pipeline.runs.params import profiled_params
from pipeline.runs.stage import DEFAULT, run_stage
from pipeline.runs.steps import grid

if __name__ == "__main__":
    run_stage(lambda: grid(profiled_params(), DEFAULT))
