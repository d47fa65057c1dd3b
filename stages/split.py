"""Stage `split`: the seeded train/validation(/test) split of every dataset in use (spec §5)."""
from pipeline.data import load_datasets
from pipeline.runs.params import load_params
from pipeline.runs.plans import split_path
from pipeline.runs.stage import SPLITS, run_stage


def main() -> None:
    params = load_params(["settings", "data"])
    data = params["data"]
    for dataset in sorted({s["dataset"] for s in params["settings"]}):
        load_datasets(dataset, data["data_dir"], split_seed=data["split_seed"], download=data["download"],
                      split_file=split_path(SPLITS, dataset), randaugment=False)


if __name__ == "__main__":
    run_stage(main)
