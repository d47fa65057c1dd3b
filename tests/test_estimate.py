"""python -m pipeline.runs.estimate: runs, epochs, images per stage and the makespan arithmetic."""
from pathlib import Path

import pytest

from pipeline.runs.estimate import main, makespan

ROOT = Path(__file__).resolve().parents[1]


def test_makespan_places_the_longest_runs_first():
    assert makespan([3, 3, 2, 2, 2], 2) == 7
    assert makespan([5, 1, 1], 8) == 5
    assert makespan([1] * 10, 1) == 10


@pytest.mark.parametrize("profile,runs,epochs", [("default", 51, 495), ("paper", 3690, 532500)])
def test_plan_counts_every_stage(profile, runs, epochs, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main([profile, "--gpus", "1", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in out if line.split() and line.split()[0] in
            ("tune_wd", "train", "grid", "ann2snn", "total")}
    assert int(rows["total"][1].replace(",", "")) == runs and int(rows["total"][2].replace(",", "")) == epochs
    assert "ESTIMATE" in out[1] and out[-1].startswith("N=")
    if profile == "default":  # 3 λ_WD × 10 epochs × (1257 training + 180 validation images) + 3 × 360 test images
        assert rows["tune_wd"][1:4] == ["3", "30", "44,190"]


def test_unknown_profile_is_one_line(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["huge"]) == 2
    assert capsys.readouterr().err.startswith("error: params key 'profile' must be one of claims, default, fmnist, paper")
