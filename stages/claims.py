"""Stage `claims`: the claims profile (profiles/claims.yaml) end to end — every step, into results/claims/ —
and the table of the paper's claims with their verdicts."""
from pipeline.runs.params import standalone_params
from pipeline.runs.stage import Layout, run_stage
from pipeline.runs.reports import claims, run_profile


def main() -> None:
    params, layout = standalone_params("claims"), Layout.of("claims")
    run_profile(params, layout)
    claims(params, layout)


if __name__ == "__main__":
    run_stage(main)
