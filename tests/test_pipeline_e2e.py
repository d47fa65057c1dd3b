"""End to end: a tiny profile through `dvc repro figures@default` (the default chain; the committed profiles
are left alone), `dvc exp run -S penalty.p=2 figures@default`, `dvc plots diff` and `verify`."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("dvc.lock", "results/")  # the copy reproduces these itself

pytestmark = pytest.mark.slow


def tiny_params(path: Path) -> None:
    params = yaml.safe_load(path.read_text())
    params["compute"]["workers"] = 1
    params["settings"][0]["width"] = 0.125
    params["train"].update(epochs=1, limit_train=100)
    params["tune_wd"]["weight_decays"] = [0.0]
    params["penalty"]["lam_norms"] = [1, 64]
    params["grid"].update(lams=[1.0e-5], bn_decays=[0])
    params["ann2snn"].update(lam_norms=[0, 4], T=[1, 2], ramp_epochs=1)  # the ramp: one warm-started link
    params["figures"]["curve_lam_norms"] = [1]
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_repository(repo: Path) -> Path:
    """The repository's files as git sees them (tracked and untracked, not ignored), less SKIP, in `repo`."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    for name in listed:
        if not name.startswith(SKIP) and (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    tiny_params(repo / "params.yaml")
    return repo


def attempt(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    return subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)


def run(repo: Path, *args: str) -> str:
    done = attempt(repo, *args)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def dvc(repo: Path, *args: str) -> str:
    return run(repo, sys.executable, "-m", "dvc", *args)


def test_repro_then_experiment_then_plots(repo):
    run(repo, "git", "init", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "tiny profile")
    dvc(repo, "repro", "figures@default")
    points = pd.read_csv(repo / "results/default/tables/tradeoff_points.csv")
    assert set(points["method"]) == {"baseline", "syn", "total", "balance", "energy_lemaire2022", "ann2snn"}
    costs = pd.read_csv(repo / "results/default/tables/cost_models.csv")  # every curve under every cost model
    assert {"paper AUC(50)", "lemaire2022 AUC(50)", "loihi AUC(70)"} <= set(costs.columns) and len(costs) == 6  # 4 penalties, 2 T
    converted = points[points["method"] == "ann2snn"]
    assert sorted(zip(converted["lam_norm"], converted["T"])) == [(0, 1), (0, 2), (4, 1), (4, 2)]
    assert set(converted["protocol"]) == {"ramp"} and set(converted["neuron"]) == {"multi"}
    for name in ("tradeoff", "training_curves", "layer_shares", "cost_models"):
        assert (repo / "results/default/figures" / f"{name}.png").stat().st_size > 0
    assert "Stage 'split@default' didn't change" in dvc(repo, "repro", "figures@default")  # a no-op rerun
    verified = run(repo, sys.executable, "-m", "pipeline.runs.verify")
    assert "results/default: reproduced bit for bit (2 runs)" in verified

    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "results")
    out = dvc(repo, "exp", "run", "-S", "penalty.p=2", "figures@default")
    for stage in ("check", "train", "score", "figures"):
        assert f"Running stage '{stage}@default'" in out
    for stage in ("split", "tune_wd", "grid", "ann2snn"):
        assert f"Running stage '{stage}@default'" not in out
    assert set(pd.read_csv(repo / "results/default/tables/tradeoff_scores.csv").query("method != 'ann2snn'")["p"]) == {2}

    dvc(repo, "plots", "diff", "HEAD", "-o", "plots_diff")
    html = (repo / "plots_diff" / "index.html").read_text()
    assert "energy_ratio" in html and "val_accuracy" in html

    params = repo / "params.yaml"
    params.write_text(params.read_text() + "trian: {epochs: 3}\n")  # a misspelled section
    done = attempt(repo, sys.executable, "-m", "dvc", "repro", "figures@default")
    assert done.returncode != 0 and "error: unknown params section 'trian'" in done.stderr
    assert "Running stage 'check@default'" in done.stdout and "Running stage 'split@default'" not in done.stdout
