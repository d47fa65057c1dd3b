"""Stage `ann2snn`: QReLU ANNs trained with a synaptic-operation penalty, converted and run for T steps."""
from pipeline.runs.conversion import evaluate_trained
from pipeline.runs.params import load_params
from pipeline.runs.plans import ann2snn_plan, baseline_energy, point_row
from pipeline.runs.stage import ARTIFACTS, SPLITS, load_baselines, run_plan, run_stage, write_rows
from pipeline.runs.store import run_id

OUT = ARTIFACTS / "ann2snn"


def main() -> None:
    params = load_params(["settings", "compute", "data", "train", "ann2snn"])
    baselines = load_baselines()
    plan = ann2snn_plan(params["settings"], params, SPLITS, baselines)
    run_plan(plan, params["compute"], OUT)
    conversion = params["ann2snn"]
    write_rows([point_row(name, cfg, result, baseline_energy(baselines[name]), curve="ann2snn", T=result["T"])
                for name, cfg in plan
                for result in evaluate_trained(cfg, OUT / "runs" / run_id(cfg), conversion["T"],
                                               neuron=conversion["neuron"], encoding=conversion["encoding"])],
               OUT / "points.csv")


if __name__ == "__main__":
    run_stage(main)
