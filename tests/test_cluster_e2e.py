"""End to end on Ray: a tiny profile through `dvc repro` with compute.backend=ray, joining a Ray head
started here (`ray start --head`, as on a cluster), gives the same tuned baseline as the local backend."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_pipeline_e2e import copy_repository, dvc, run, tiny_params

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_head():
    """A Ray head of 2 CPUs in its own process group and temp dir (short: socket paths); its address."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray = Path(sys.executable).parent / "ray"
    head = subprocess.Popen([str(ray), "start", "--head", "--block", "--port=0", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address_file = Path(temp) / "ray_current_cluster"
    deadline = time.monotonic() + 60
    while not address_file.exists() and time.monotonic() < deadline and head.poll() is None:
        time.sleep(0.2)
    try:
        assert address_file.exists(), "ray start --head did not come up"
        yield address_file.read_text().strip()
    finally:
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):  # only this head's process group
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            try:
                head.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def test_dvc_repro_on_ray_matches_local(tmp_path, ray_head):
    repo = copy_repository(tmp_path / "repo")
    tiny_params(repo / "params.yaml")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["compute"].update(backend="ray", ray_address=ray_head)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(repo, "git", "init", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "tiny profile on ray")
    out = dvc(repo, "repro", "figures@default")
    assert "[1/1" in out and "test accuracy" in out
    points = pd.read_csv(repo / "results/default/tables/tradeoff_points.csv")
    assert set(points["method"]) == {"baseline", "syn", "total", "balance", "energy_lemaire2022", "ann2snn"}
    on_ray = json.loads((repo / "artifacts/default/tune_wd/baseline.json").read_text())

    # the same stage on the local backend, from an empty store: the same baseline
    params["compute"].update(backend="local", store="runs_local")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(repo, sys.executable, "stages/tune_wd.py", "default")  # backend and store: read live, no new check
    assert json.loads((repo / "artifacts/default/tune_wd/baseline.json").read_text()) == on_ray
