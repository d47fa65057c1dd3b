"""Stage `check`: the whole params.yaml (profile applied) validated, and the run store probed for
writability, before any stage trains."""
from pipeline.fileio import probe_writable
from pipeline.runs.params import load_params
from pipeline.runs.stage import CHECKED, run_stage


def main() -> None:
    params = load_params(["compute"])
    probe_writable(params["compute"]["store"], "compute.store")
    CHECKED.parent.mkdir(parents=True, exist_ok=True)
    CHECKED.write_text("params.yaml and its profile are valid\n")


if __name__ == "__main__":
    run_stage(main)
