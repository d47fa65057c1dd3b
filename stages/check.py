"""Stage `check`: the whole params.yaml (profile applied) validated before any stage trains."""
from pipeline.runs.params import load_params
from pipeline.runs.stage import CHECKED, run_stage


def main() -> None:
    load_params()
    CHECKED.parent.mkdir(parents=True, exist_ok=True)
    CHECKED.write_text("params.yaml and its profile are valid\n")


if __name__ == "__main__":
    run_stage(main)
