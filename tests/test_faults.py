"""Fault injection: each failure is one line (or one warning) and an exit code, never a traceback,
and nothing finished is lost.

Bad params and bad paths end a stage or `python -m pipeline.train` with one line and exit code 2
before any work; Ctrl-C with one line and 130; damaged run files are set aside and the run trains
again; a run killed with SIGKILL resumes bit for bit; a diverged baseline or a run without a history
leaves the setting's curves out with one warning, the tables saying why.

A few cases run as real processes (the check stage, SIGINT, SIGKILL); the rest call the same entry
points in this process, which is faster on small machines.
"""
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError

import pandas as pd
import pytest
import yaml

import pipeline.cli as cli
import pipeline.train as train
from pipeline.cli import add_config_arguments, config_from_args
from pipeline.config import RunConfig
from pipeline.rundir import CHECKPOINT, HISTORY, METRICS
from pipeline.runs.params import load_params
from pipeline.runs.plans import (ann2snn_plan, baseline_energy, choose_baseline, grid_plan, grid_references,
                                 penalty_plan, point_row, tune_wd_plan)
from pipeline.runs.results import SKIPPED_NOTE
from pipeline.runs.stage import write_points, write_rows
from pipeline.runs.store import run_id

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
ARGS = ["--dataset", "digits", "--model", "cnn7", "--width", "0.0625", "--limit-train", "100", "--batch-size", "50",
        "--epochs", "3", "--penalty", "syn", "--lam-norm", "4", "--seed", "0"]
CFG = dict(dataset="digits", model="cnn7", width=0.0625, limit_train=100, batch_size=50, epochs=3, penalty="syn",
           lam_norm=4.0, seed=0)


def _result(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "epoch_seconds"}  # wall time alone may differ


def _history(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / HISTORY).drop(columns="epoch_seconds")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run every faulty one must reproduce."""
    out = tmp_path_factory.mktemp("straight")
    return train.train_run(RunConfig.from_dict(CFG), out), out


@pytest.fixture
def repo(params_dir, monkeypatch):
    shutil.copytree(ROOT / "stages", params_dir / "stages")
    monkeypatch.syspath_prepend(str(ROOT))
    return params_dir


def edit(path: Path, change) -> None:
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, allow_unicode=True))


def stage(name: str, capsys, *argv: str) -> tuple[int, str]:
    """Run stages/<name>.py as `python stages/<name>.py` would, in this process: (exit code, stderr)."""
    sys.argv = [f"stages/{name}.py", *argv]
    try:
        runpy.run_path(f"stages/{name}.py", run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


# --- params and paths: one line, exit 2, before any work -------------------------------------------------------

@pytest.mark.parametrize("change,message", [
    (lambda p: p.update(trian={"epochs": 3}), "unknown params section 'trian'"),
    (lambda p: p["penalty"].update(p=0), "params key 'penalty.p' must be >= 1 (got 0)"),
    (lambda p: p["score"].update(cutoffs=[70, 150]), "params key 'score.cutoffs[1]' must be < 100 (got 150"),
    (lambda p: p["ann2snn"].update(T=[0]), "params key 'ann2snn.T[0]' must be >= 1 (got 0)"),
    (lambda p: p["tune_wd"].update(weight_decays=[]), "params key 'tune_wd.weight_decays' must be a non-empty"),
    (lambda p: p["compute"].update(store="store_file"), "compute.store store_file is not a writable directory"),
])
def test_check_stage_refuses_bad_params_in_one_line(repo, capsys, change, message):
    (repo / "store_file").write_text("a file, not a directory")
    edit(repo / "params.yaml", change)
    code, err = stage("check", capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not (repo / "artifacts").exists() and (repo / "store_file").read_text() == "a file, not a directory"


def test_check_stage_as_a_process_prints_one_line_no_traceback(repo):
    edit(repo / "params.yaml", lambda p: p.update(trian={"epochs": 3}))
    done = subprocess.run([sys.executable, "stages/check.py"], cwd=repo, env=ENV, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: unknown params section 'trian'")


def test_exponent_lam_norms_pass_in_params_and_config_files(repo, capsys):
    text = (repo / "params.yaml").read_text()
    text = text.replace("lam_norms: [1, 2, 4, 8, 16, 64, 256, 1024]", "lam_norms: [1, 1e3]")
    (repo / "params.yaml").write_text(text.replace("curve_lam_norms: [4, 64, 1024]", "curve_lam_norms: [1, 1e3]"))
    assert stage("check", capsys) == (0, "")
    assert load_params(["penalty"])["penalty"]["lam_norms"] == [1.0, 1000.0]
    (repo / "run.yaml").write_text("penalty: syn\nlam_norm: 1e3\nweight_decay: 1e-4\n")
    parser = cli._Parser()
    add_config_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--config", "run.yaml"]))
    assert (cfg.lam_norm, cfg.weight_decay) == (1000.0, 1e-4)


def test_missing_upstream_artifact_is_one_line_exit_1(repo, capsys):
    code, err = stage("score", capsys)
    assert code == 1 and err.startswith("error: FileNotFoundError: ") and "baseline.json" in err
    assert err.count("\n") == 1


def test_full_disk_mid_run_is_one_line_exit_1_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert train.train_run(RunConfig.from_dict(CFG), out, stop_after=1) is None
    before = (out / CHECKPOINT).read_bytes()

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train, "write_atomic", full)
    assert train.main([*ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "rerun to resume" in err
    assert (out / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("where", ["existing_file", "proc", "split_proc"])
def test_unwritable_paths_are_one_line_before_training(tmp_path, capsys, where, monkeypatch):
    (tmp_path / "existing_file").write_text("keep me")
    out, extra = tmp_path / "run", []
    if where == "existing_file":
        out = tmp_path / "existing_file"
    elif where == "proc":
        out = Path("/proc/no_such_dir/run")
    else:
        extra = ["--split-file", "/proc/no_such_dir/split.json"]
    monkeypatch.setattr(train, "load_datasets", lambda *a, **k: pytest.fail("data read before the path check"))
    assert train.main([*ARGS, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a writable directory" in err
    assert (tmp_path / "existing_file").read_text() == "keep me"
    if where == "split_proc":
        assert "split file directory /proc/no_such_dir" in err and sorted(os.listdir(out)) == []


def test_offline_fashion_mnist_leaves_no_empty_folders(tmp_path, capsys, monkeypatch, no_fashion_mnist_package):
    import torchvision.datasets.mnist as mnist

    def offline(*args, **kwargs):
        raise URLError("offline")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    for data_dir in (tmp_path / "data", tmp_path / "kept"):
        assert train.main(["--dataset", "fashion_mnist", "--data-dir", str(data_dir), "--out",
                           str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(data_dir) in err
    assert not (tmp_path / "data").exists()
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]


# --- damaged run files: set aside in one warning, the run trains again ---------------------------------------

def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("damage", ["no_test_accuracy", "not_json", "a_list", "a_directory"])
def test_damaged_metrics_are_set_aside_and_the_run_trains_again(tmp_path, caplog, straight, damage):
    metrics, _ = straight
    out = tmp_path / "run"
    out.mkdir()
    if damage == "a_directory":
        (out / METRICS).mkdir()
    else:
        text = {"no_test_accuracy": json.dumps({k: v for k, v in metrics.items() if k != "test_accuracy"}),
                "not_json": '{"test_accuracy": 0.9', "a_list": "[1, 2]"}[damage]
        (out / METRICS).write_text(text)
    with caplog.at_level("WARNING"):
        again = train.train_run(RunConfig.from_dict(CFG), out)
    (warning,) = _warnings(caplog)
    assert str(out / METRICS) in warning and "set aside as metrics.json.bad-" in warning and "\n" not in warning
    assert _result(again) == _result(metrics)
    (aside,) = out.glob("metrics.json.bad-*")  # kept for a look, not deleted
    if damage != "a_directory":
        assert aside.read_text() == text


@pytest.mark.parametrize("damage", ["garbage", "a_directory"])
def test_damaged_checkpoint_means_one_warning_and_a_fresh_start(tmp_path, caplog, straight, damage):
    metrics, _ = straight
    out = tmp_path / "run"
    cfg = RunConfig.from_dict(CFG)
    assert train.train_run(cfg, out, stop_after=1) is None
    (out / CHECKPOINT).unlink()
    if damage == "garbage":
        (out / CHECKPOINT).write_bytes(b"\x00garbage" * 100)
    else:
        (out / CHECKPOINT).mkdir()
    with caplog.at_level("WARNING"):
        again = train.train_run(cfg, out)
    (warning,) = _warnings(caplog)
    assert ("starting from scratch" if damage == "garbage" else "is a directory") in warning
    assert _result(again) == _result(metrics) and not (out / CHECKPOINT).exists()


# --- Ctrl-C and kill -9 in a real process: one line, exit 130, bit-identical resume ---------------------------

_SLOW = """
import os, sys, time
import pipeline.train as t
epoch_train, slow = t._train_epoch, int(os.environ["SLOW_EPOCH"])
def held(run, cfg, loader, coef, epoch):  # parks the run at the start of one epoch, so a signal lands mid-run
    if epoch == slow:
        print(f"holding in epoch {epoch}", file=sys.stderr, flush=True)
        time.sleep(120)
    return epoch_train(run, cfg, loader, coef, epoch)
t._train_epoch = held
sys.exit(t.main(sys.argv[1:]))
"""


def _start_held(out: Path, epoch: int, log: Path) -> subprocess.Popen:
    """`python -m pipeline.train` (through `main`) that waits at the start of `epoch`, once it is there."""
    with log.open("w") as stderr:  # the child keeps its own copy of the file
        proc = subprocess.Popen([sys.executable, "-c", _SLOW, *ARGS, "--out", str(out)],
                                env={**ENV, "SLOW_EPOCH": str(epoch)}, stdout=subprocess.DEVNULL, stderr=stderr,
                                cwd=out.parent)
    deadline = time.monotonic() + 90
    while "holding in epoch" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the run never reached the held epoch"
        time.sleep(0.1)
    return proc


def test_sigint_then_kill9_then_rerun_equals_a_straight_run(tmp_path, straight, capsys):
    metrics, straight_dir = straight
    out = tmp_path / "run"
    proc = _start_held(out, 2, tmp_path / "first.log")  # epoch 1 checkpointed
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    err = (tmp_path / "first.log").read_text()
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "interrupted after epoch 1; rerun the same command to resume"

    proc = _start_held(out, 3, tmp_path / "second.log")  # resumed after epoch 1, epoch 2 checkpointed
    proc.kill()
    assert proc.wait(60) == -signal.SIGKILL
    assert "resuming" in (tmp_path / "second.log").read_text()
    assert (out / CHECKPOINT).exists() and not (out / METRICS).exists() and len(_history(out)) == 2

    assert train.main([*ARGS, "--out", str(out)]) == 0  # the same command again
    assert _result(json.loads((out / METRICS).read_text())) == _result(metrics)
    pd.testing.assert_frame_equal(_history(out), _history(straight_dir))


# --- divergence as data: a diverged baseline, a run with no history -------------------------------------------

def test_choose_baseline_prefers_a_stable_weight_decay_and_flags_all_diverged():
    plan = [("a", RunConfig(weight_decay=wd)) for wd in (0.0, 1e-4)] + [("b", RunConfig(weight_decay=0.0))]
    metrics = [{"val_accuracy": 0.9, "test_accuracy": 0.9, "energy_pj": 5.0, "diverged": True},
               {"val_accuracy": 0.5, "test_accuracy": 0.5, "energy_pj": 7.0, "diverged": False},
               {"val_accuracy": 0.1, "test_accuracy": 0.1, "energy_pj": 3.0, "diverged": True}]
    chosen = choose_baseline(plan, metrics)
    assert (chosen["a"]["weight_decay"], chosen["a"]["diverged"]) == (1e-4, False)
    assert chosen["b"]["diverged"] is True and chosen["b"]["energy_pj"] == 3.0


def _fake_metrics(i: int, diverged: bool = False) -> dict:
    acc = 0.1 if diverged else 0.5 + 0.4 * ((i * 7) % 10) / 10
    return {"test_accuracy": acc, "val_accuracy": acc, "energy_pj": 1e5 * (1 + i % 5), "rate_mean": 0.1,
            "rate_sum": 1.0, "dead_rate": 0.2, "diverged": diverged, "epoch_seconds": 1.0}


def _write_history(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "train_accuracy": [0.3, 0.6], "val_accuracy": [0.3, 0.5],
                  "rate_mean": [0.2, 0.1], "lam": [0.1, 0.2]}).to_csv(run_dir / HISTORY, index=False)


def _fake_artifacts(params: dict, broken: str) -> None:
    """Every training stage's outputs for `params`, made up; setting `broken`'s baseline diverged at every λ_WD
    (in epoch 1: no history) and so did its Ω_syn run at the largest λ'."""
    art, settings = Path("artifacts"), params["settings"]
    tune = tune_wd_plan(settings, params, "artifacts/splits")
    baselines = choose_baseline(tune, [_fake_metrics(i, name == broken) for i, (name, _) in enumerate(tune)])
    (art / "tune_wd").mkdir(parents=True)
    (art / "tune_wd" / "baseline.json").write_text(json.dumps(baselines))
    write_points(tune, [_fake_metrics(i, name == broken) for i, (name, _) in enumerate(tune)], baselines,
                 art / "tune_wd" / "points.csv")
    for name, cfg in tune:
        if name != broken:
            _write_history(art / "tune_wd" / "runs" / run_id(cfg))
    top = max(params["penalty"]["lam_norms"])
    for kind in ("syn", "total", "balance"):
        plan = penalty_plan(settings, params, "artifacts/splits", kind, baselines)
        runs = [_fake_metrics(i, name == broken and cfg.lam_norm == top) for i, (name, cfg) in enumerate(plan)]
        write_points(plan, runs, baselines, art / "train" / kind / "points.csv")
        for (name, cfg), m in zip(plan, runs):
            if kind == "syn" and not m["diverged"]:
                _write_history(art / "train" / "syn" / "runs" / run_id(cfg))
    plan = ann2snn_plan(settings, params, "artifacts/splits", baselines)
    write_rows([point_row(name, cfg, {**_fake_metrics(i), "T": T}, baseline_energy(baselines[name]),
                          curve="ann2snn", T=T)
                for i, (name, cfg) in enumerate(plan) for T in params["ann2snn"]["T"]], art / "ann2snn" / "points.csv")
    plan = grid_plan(settings, params, "artifacts/splits")
    runs = [_fake_metrics(i, name == broken and cfg.lam == cfg.weight_decay == cfg.bn_decay == 0)
            for i, (name, cfg) in enumerate(plan)]
    write_rows([point_row(name, cfg, m, ref) for (name, cfg), m, ref in zip(plan, runs, grid_references(plan, runs))],
               art / "grid" / "points.csv")


def test_a_diverged_baseline_skips_its_curves_with_one_warning(repo, capsys, caplog):
    def change(p):
        p["settings"].append({**p["settings"][0], "name": "steady", "lr": 0.01})
        p["figures"]["models"] = ["cnn7"]
    edit(repo / "params.yaml", change)
    params = load_params(["settings", "compute", "data", "train", "tune_wd", "penalty", "grid", "ann2snn"])
    broken = params["settings"][0]["name"]
    _fake_artifacts(params, broken)

    with caplog.at_level("WARNING"):
        assert stage("score", capsys)[0] == 0
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"warning: the tuned baseline of {broken} diverged at every λ_WD")
    tables = repo / "results" / "default" / "tables"
    points = pd.read_csv(tables / "tradeoff_points.csv")
    assert points.loc[points["setting"] == broken, "energy_ratio"].isna().all()
    assert (points.loc[points["setting"] == broken, "note"] == SKIPPED_NOTE).all()
    comparison = pd.read_csv(tables / "method_comparison.csv")
    assert comparison.loc[comparison["setting"] == broken, "note"].tolist() == [SKIPPED_NOTE]
    steady = comparison[comparison["setting"] == "steady"]
    assert len(steady) == 6 and steady["AUC(50)"].notna().all()
    assert SKIPPED_NOTE in (tables / "method_comparison.md").read_text()
    assert json.loads((repo / "results" / "default" / "metrics.json").read_text())["steady"]["syn"]["auc50"] is not None

    caplog.clear()
    with caplog.at_level("WARNING"):
        assert stage("figures", capsys)[0] == 0
    skip, no_curve = _warnings(caplog)
    assert skip == warning
    assert no_curve.startswith("warning: no training curve for baseline (diverged in epoch 1), Ω_syn λ'=1024 "
                               "(diverged in epoch 1)")
    assert (repo / "results" / "default" / "figures" / "training_curves.png").stat().st_size > 0
    assert (repo / "results" / "default" / "figures" / "tradeoff.png").stat().st_size > 0
    (curves,) = (repo / "results" / "default" / "plots" / "curves").iterdir()
    assert curves.name == f"{broken}.csv"
    assert list(dict.fromkeys(pd.read_csv(curves)["run"])) == ["Ω_syn λ'=4", "Ω_syn λ'=64"]  # only runs with epochs


def test_score_stage_warning_is_one_stderr_line_in_a_real_process(repo):
    edit(repo / "params.yaml", lambda p: p["settings"].append({**p["settings"][0], "name": "steady", "lr": 0.01}))
    params = load_params(["settings", "compute", "data", "train", "tune_wd", "penalty", "grid", "ann2snn"])
    _fake_artifacts(params, params["settings"][0]["name"])
    done = subprocess.run([sys.executable, "stages/score.py"], cwd=repo, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "diverged at every λ_WD" in done.stderr


def test_without_divergence_the_tables_keep_their_columns(repo, capsys, caplog):
    edit(repo / "params.yaml", lambda p: p["figures"].update(models=["cnn7"]))
    params = load_params(["settings", "compute", "data", "train", "tune_wd", "penalty", "grid", "ann2snn"])
    _fake_artifacts(params, broken="")
    with caplog.at_level("WARNING"):
        assert stage("score", capsys) == (0, "") and stage("figures", capsys) == (0, "")
    assert _warnings(caplog) == []
    for table in ("tradeoff_points", "tradeoff_scores", "method_comparison"):
        assert "note" not in pd.read_csv(repo / "results" / "default" / "tables" / f"{table}.csv").columns
    (curves,) = (repo / "results" / "default" / "plots" / "curves").iterdir()
    assert pd.read_csv(curves)["run"].nunique() == 4  # baseline and three λ'
