"""Fault injection: each failure is one line (or one warning) and an exit code, never a traceback,
and nothing finished is lost.

Bad params, values this machine cannot honour (a bound, the device, the memory a model needs), unsafe
names and bad paths end a stage, `python -m pipeline.train` or `python -m pipeline.accounting` with
one line and exit code 2 before any work; Ctrl-C with one line and 130, even while a stage's pool
workers import; a full disk with one line saying what was kept; damaged run files (metrics, history,
checkpoint, model) are set aside and the run trains again; a run killed with SIGKILL resumes bit for
bit; two commands on one run directory train it once; a Ray address without a Ray head fails in
seconds; a diverged baseline or a run without a history leaves the setting's curves out with one
warning, the tables saying why.

A few cases run as real processes (the check stage, SIGINT, SIGKILL, the lock, the pool); the rest
call the same entry points in this process, which is faster on small machines.
"""
import io
import json
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.error import URLError

import pandas as pd
import pytest
import torch
import yaml

import pipeline.accounting as accounting
import pipeline.cli as cli
import pipeline.machine as machine
import pipeline.train as train
from pipeline.checkpoint import load_model_state, save_model_state
from pipeline.cli import add_config_arguments, config_from_args
from pipeline.config import NAME, ConfigError, RunConfig, check
from pipeline.fileio import DamagedFile
from pipeline.rundir import (CHECKPOINT, HISTORY, HISTORY_COLUMNS, LOCK, METRICS, MODEL, RECORDS, read_history,
                             run_lock)
from pipeline.runs.experiments import write_points, write_rows
from pipeline.runs.layout import Layout
from pipeline.runs.params import resolve, write_checked
from pipeline.runs.plans import (ann2snn_plan, baseline_energy, choose_baseline, grid_plan, grid_references,
                                 penalty_plan, point_row, tune_wd_plan)
from pipeline.runs.ray_backend import PROBE_SECONDS
from pipeline.runs.reporting import SKIPPED_NOTE
from pipeline.runs.store import run_all, run_id

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
    sys.argv = [f"stages/{name}.py", *(argv or ("default",))]
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
    (lambda p: p["penalty"].update(lam_norms=[1, 4, 4.0]), "params key 'penalty.lam_norms' holds 4.0 twice"),
    (lambda p: p["tune_wd"].update(seeds=list(range(1001))), "'tune_wd.seeds' holds 1,001 values, more than the 1,000"),
    (lambda p: p["train"].update(epochs=10**6), "params key 'train.epochs' must be <= 10000 (got 1000000)"),
    (lambda p: p["settings"][0].update(width=1e6), "config key 'width' must be <= 64 (got 1000000.0)"),
    (lambda p: p["compute"].update(threads=5000), "params key 'compute.threads' must be <= 1024 (got 5000)"),
    (lambda p: p["data"].update(data_dir=""), "params key 'data.data_dir' must be a path of 1 to 4096 characters"),
    (lambda p: p["settings"][0].update(name="../../../../../escape_rel"),
     "params key 'settings[0].name' must be a file or folder name"),
    (lambda p: p["settings"].append({**p["settings"][0], "name": p["settings"][0]["name"].upper()}),
     "one name on a case-insensitive disk"),
    (lambda p: p["ann2snn"].update(settings=["../x"]), "params key 'ann2snn.settings[0]' must be a file or folder name"),
    (lambda p: p["compute"].update(store=""), "params key 'compute.store' must be a path of 1 to 4096 characters"),
])
def test_check_stage_refuses_bad_params_in_one_line(repo, capsys, change, message):
    (repo / "store_file").write_text("a file, not a directory")
    edit(repo / "params.yaml", change)
    code, err = stage("check", capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not (repo / "artifacts").exists() and (repo / "store_file").read_text() == "a file, not a directory"


def test_check_stage_as_a_process_prints_one_line_no_traceback(repo):
    edit(repo / "params.yaml", lambda p: p.update(trian={"epochs": 3}))
    done = subprocess.run([sys.executable, "stages/check.py", "default"], cwd=repo, env=ENV, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: unknown params section 'trian'")


def test_check_stage_refuses_a_device_this_machine_lacks(repo, capsys, monkeypatch):
    monkeypatch.setattr(machine, "cuda_available", lambda: False)
    edit(repo / "params.yaml", lambda p: p["compute"].update(device="cuda"))
    code, err = stage("check", capsys)
    assert (code, err) == (2, "error: params key 'compute.device' is 'cuda' but this machine has no CUDA device "
                              "(torch finds none); set it to 'auto' or 'cpu'\n")


def test_a_huge_params_file_is_refused_unread_in_one_line(repo, capsys):
    lams = ", ".join(f"{x}.5" for x in range(300_000))  # 2.5 MB, as the 10 MB trial's 1.3 M λ' in small
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + f"# {lams}\n")
    start = time.monotonic()
    code, err = stage("check", capsys)
    assert time.monotonic() - start < 5 and code == 2 and err.count("\n") == 1
    assert err.startswith("error: params.yaml holds 2,") and "more than the 1,048,576 a file of sections may" in err


@pytest.mark.parametrize("names,message", [
    (["../../../../../escape_rel"], "params key 'names[0]' must be a file or folder name: at most 64 letters, digits, "
                                    "'.', '_' or '-', starting with a letter or digit, not ending with '.' "
                                    "(got '../../../../../escape_rel')"),
    (["a/b"], "(got 'a/b')"), ([".hidden"], "(got '.hidden')"), ([""], "(got '')"), (["trailing."], "(got 'trailing.')"),
    (["x" * 65], "at most 64 letters"),
    (["Run-A", "run-a"], "params key 'names' holds 'Run-A' and 'run-a', one name on a case-insensitive disk,"),
])
def test_names_that_become_paths_are_safe_distinct_path_components(names, message):
    with pytest.raises(ConfigError) as err:
        check("names", names, replace(NAME, listed="yes"), "params key")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert check("names", ["cnn7-digits-adam-s3nn", "run_2.b"], replace(NAME, listed="yes")) == [
        "cnn7-digits-adam-s3nn", "run_2.b"]


def test_exponent_lam_norms_pass_in_params_and_config_files(repo, capsys):
    text = (repo / "params.yaml").read_text()
    text = text.replace("lam_norms: [1, 2, 4, 8, 16, 64, 256, 1024]", "lam_norms: [1, 1e3]")
    (repo / "params.yaml").write_text(text.replace("curve_lam_norms: [4, 64, 1024]", "curve_lam_norms: [1, 1e3]"))
    assert stage("check", capsys) == (0, "")
    assert resolve("default")["penalty"]["lam_norms"] == [1.0, 1000.0]
    (repo / "run.yaml").write_text("penalty: syn\nlam_norm: 1e3\nweight_decay: 1e-4\n")
    parser = cli._Parser()
    add_config_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--config", "run.yaml"]))
    assert (cfg.lam_norm, cfg.weight_decay) == (1000.0, 1e-4)


@pytest.mark.parametrize("flags,message", [
    (["--width", "1e6"], "config key 'width' must be <= 64 (got 1000000.0)"),
    (["--width", "nan"], "config key 'width' must be finite (got nan)"),
    (["--width", "inf"], "config key 'width' must be finite (got inf)"),
    (["--epochs", "1000000"], "config key 'epochs' must be <= 10000 (got 1000000)"),
    (["--batch-size", "1000000"], "config key 'batch_size' must be <= 65536 (got 1000000)"),
    (["--threads", "100000"], "config key 'threads' must be <= 1024 (got 100000)"),
    (["--seed", str(2**32)], "config key 'seed' must be <= 4294967295 (got 4294967296)"),
    (["--data-dir", ""], "config key 'data_dir' must be a path of 1 to 4096 characters without NUL (got '')"),
    (["--device", "cuda"], "config key 'device' is 'cuda' but this machine has no CUDA device (torch finds none); "
                           "set it to 'auto' or 'cpu'"),
    (["--model", "vgg11", "--width", "8"], "config keys 'width' and 'batch_size': training vgg11 at width 8 on digits "
                                            "in batches of 50 needs about 37.1 GiB, more than the 8.0 GiB of cpu "
                                            "memory this machine has; lower width or batch_size"),
])
def test_values_a_machine_cannot_honour_are_one_line_before_any_work(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setattr(machine, "cuda_available", lambda: False)
    monkeypatch.setattr(machine, "memory_bytes", lambda kind: 8 * 2**30)
    monkeypatch.setattr(train, "create_model", lambda *a, **k: pytest.fail("a model allocated"))
    out = tmp_path / "run"
    assert train.main([*ARGS, *flags, "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n" and not out.exists()


@pytest.mark.parametrize("argv,message", [
    (["cnn7", "--classes", "0"], "num_classes must be an integer from 1 to 100000 (got 0)"),
    (["vgg11", "--classes", "-5"], "num_classes must be an integer from 1 to 100000 (got -5)"),
    (["cnn7", "--width", "inf"], "width must be > 0 and <= 64 (got inf)"),
    (["cnn7", "--width", "nan"], "width must be > 0 and <= 64 (got nan)"),
    (["cnn7", "--width", "1e6"], "width must be > 0 and <= 64 (got 1000000.0)"),
    (["resnet18", "--width", "16"], "building resnet18 at width 16 needs about 21.8 GiB, more than the 8.0 GiB of cpu "
                                    "memory this machine has; lower the width"),
])
def test_accounting_refuses_what_it_cannot_build_in_one_line(capsys, monkeypatch, argv, message):
    monkeypatch.setattr(machine, "memory_bytes", lambda kind: 8 * 2**30)
    with pytest.raises(SystemExit) as done:
        accounting.main(argv)
    assert done.value.code == 2 and capsys.readouterr().err == f"error: {message}\n"


def test_missing_upstream_artifact_is_one_line_exit_1(repo, capsys):
    code, err = stage("score", capsys)
    assert code == 2 and err == "error: artifacts/default/params not found: run the check stage first (dvc repro)\n"
    assert stage("check", capsys) == (0, "")
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
    assert err.count("\n") == 1 and "No space left on device" in err
    assert err.endswith("; stopped after epoch 1; rerun the same command to resume\n")
    assert (out / CHECKPOINT).read_bytes() == before


def test_full_disk_in_epoch_1_claims_no_checkpoint(tmp_path, capsys, monkeypatch):
    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train, "write_atomic", full)
    out = tmp_path / "run"
    assert train.main([*ARGS, "--out", str(out)]) == 1
    assert capsys.readouterr().err == ("error: OSError: [Errno 28] No space left on device; stopped before epoch 1 "
                                       "finished (nothing to keep); rerun the same command to start again\n")
    assert not (out / CHECKPOINT).exists()


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
        assert "split file directory /proc/no_such_dir" in err and sorted(os.listdir(out)) == [LOCK]


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


@pytest.mark.parametrize("damage", ["no_test_accuracy", "not_json", "a_list", "a_directory", "not_utf8",
                                    "accuracy_above_1", "negative_energy", "nan_accuracy", "diverged_a_string"])
def test_damaged_metrics_are_set_aside_and_the_run_trains_again(tmp_path, caplog, straight, damage):
    metrics, _ = straight
    out = tmp_path / "run"
    out.mkdir()
    if damage == "a_directory":
        (out / METRICS).mkdir()
    else:
        changed = {"accuracy_above_1": {"test_accuracy": 1.5}, "negative_energy": {"energy_pj": -1.0},
                   "nan_accuracy": {"test_accuracy": float("nan")}, "diverged_a_string": {"diverged": "no"}}
        data = {"no_test_accuracy": json.dumps({k: v for k, v in metrics.items() if k != "test_accuracy"}).encode(),
                "not_json": b'{"test_accuracy": 0.9', "a_list": b"[1, 2]", "not_utf8": b"\xb8\x00\xff" * 10,
                **{k: json.dumps({**metrics, **v}).encode() for k, v in changed.items()}}[damage]
        (out / METRICS).write_bytes(data)
    with caplog.at_level("WARNING"):
        again = train.train_run(RunConfig.from_dict(CFG), out)
    (warning,) = _warnings(caplog)
    assert str(out / METRICS) in warning and "set aside as metrics.json.bad-" in warning and "\n" not in warning
    assert _result(again) == _result(metrics)
    (aside,) = out.glob("metrics.json.bad-*")  # kept for a look, not deleted
    if damage != "a_directory":
        assert aside.read_bytes() == data


def _checkpoint_after_epoch_1(out: Path) -> bytes:
    assert train.train_run(RunConfig.from_dict(CFG), out, stop_after=1) is None
    return (out / CHECKPOINT).read_bytes()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "epoch_99", "a_directory"])
def test_damaged_checkpoint_is_set_aside_in_one_warning_and_the_run_starts_afresh(tmp_path, caplog, straight,
                                                                                   damage):
    metrics, _ = straight
    out = tmp_path / "run"
    whole = _checkpoint_after_epoch_1(out)
    (out / CHECKPOINT).unlink()
    if damage == "a_directory":
        (out / CHECKPOINT).mkdir()
    else:
        ckpt = torch.load(io.BytesIO(whole), weights_only=True)
        buf = io.BytesIO()
        torch.save({**ckpt, "epoch": 99}, buf)
        data = {"garbage": b"\x00garbage" * 100, "truncated": whole[:len(whole) // 2], "empty": b"",
                "epoch_99": buf.getvalue()}[damage]
        (out / CHECKPOINT).write_bytes(data)
    with caplog.at_level("WARNING"):
        again = train.train_run(RunConfig.from_dict(CFG), out)
    (warning,) = _warnings(caplog)
    assert "\n" not in warning and "set aside as checkpoint.pt.bad-" in warning
    assert ("is a directory" if damage == "a_directory" else "starting from scratch") in warning
    if damage == "epoch_99":
        assert "does not fit this run (ValueError: epoch count out of range)" in warning
    assert _result(again) == _result(metrics) and not (out / CHECKPOINT).exists()
    (aside,) = out.glob("checkpoint.pt.bad-*")  # kept, not overwritten
    if damage != "a_directory":
        assert aside.read_bytes() == data


def _finished_copy(straight, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(straight[1], out)
    return out


@pytest.mark.parametrize("damage", [b"\xb8\x01garbage", b"epoch,loss\n1,0.5\n",
                                    (",".join(HISTORY_COLUMNS) + "\n" + ",".join(["one"] * 11) + "\n").encode()])
def test_a_finished_runs_damaged_history_is_set_aside_and_the_run_trains_again(tmp_path, caplog, straight,
                                                                                 damage):
    metrics, straight_dir = straight
    out = _finished_copy(straight, tmp_path)
    (out / HISTORY).write_bytes(damage)
    with caplog.at_level("WARNING"):
        again = train.train_run(RunConfig.from_dict(CFG), out)
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"{out / HISTORY} is damaged (") and "\n" not in warning
    assert "; set aside as history.csv.bad-" in warning and "metrics.json set aside as metrics.json.bad-" in warning
    assert _result(again) == _result(metrics)
    pd.testing.assert_frame_equal(_history(out), _history(straight_dir))
    assert [p.read_bytes() for p in out.glob("history.csv.bad-*")] == [damage]
    assert len(list(out.glob("metrics.json.bad-*"))) == 1


def test_a_damaged_history_read_back_names_its_file_in_one_line(tmp_path):
    path = tmp_path / HISTORY
    path.write_bytes(b"\xb8\x01garbage")
    with pytest.raises(DamagedFile) as err:
        read_history(path)
    assert str(err.value).startswith(f"{path} is damaged (UnicodeDecodeError: 'utf-8' codec can't decode byte 0xb8")
    assert "; set aside as history.csv.bad-" in str(err.value) and not path.exists()


@pytest.mark.parametrize("damage", ["truncated", "another_model"])
def test_a_damaged_model_file_is_one_line_set_aside_and_the_run_trains_again(tmp_path, caplog, straight, damage):
    metrics, _ = straight
    out = _finished_copy(straight, tmp_path)
    cfg = RunConfig.from_dict(CFG)
    whole = (out / MODEL).read_bytes()
    if damage == "truncated":
        (out / MODEL).write_bytes(whole[:len(whole) // 2])
    else:
        save_model_state(train.build_model(RunConfig.from_dict({**CFG, "width": 0.125})), out / MODEL)
    with pytest.raises(DamagedFile) as err:  # what evaluating the trained ANN (the ann2snn stage) meets
        load_model_state(train.build_model(cfg), out / MODEL)
    assert str(err.value).startswith(f"{out / MODEL} is damaged (") and "\n" not in str(err.value)
    assert "; set aside as model.pt.bad-" in str(err.value) and not (out / MODEL).exists()
    with caplog.at_level("WARNING"):
        again = train.train_run(cfg, out)
    assert _warnings(caplog) == [f"{out / MODEL} is missing; metrics.json set aside as "
                                 f"{next(out.glob('metrics.json.bad-*')).name} with it, training the run again"]
    assert _result(again) == _result(metrics) and (out / MODEL).read_bytes() == whole


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


def _interruptible() -> None:
    """A child's SIGINT as a terminal's foreground job has it: default. A runner that starts pytest in the
    background (as CI's does) leaves SIGINT ignored, which children inherit and Python then keeps ignoring."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_held(out: Path, epoch: int, log: Path) -> subprocess.Popen:
    """`python -m pipeline.train` (through `main`) that waits at the start of `epoch`, once it is there."""
    with log.open("w") as stderr:  # the child keeps its own copy of the file
        proc = subprocess.Popen([sys.executable, "-c", _SLOW, *ARGS, "--out", str(out)],
                                env={**ENV, "SLOW_EPOCH": str(epoch)}, stdout=subprocess.DEVNULL, stderr=stderr,
                                cwd=out.parent, preexec_fn=_interruptible)
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


# --- two trainers, Ctrl-C while the pool starts, a dead Ray address ---------------------------------------------

def test_two_commands_on_one_out_train_it_once(tmp_path, straight):
    metrics, straight_dir = straight
    out, log = tmp_path / "run", tmp_path / "second.log"
    with run_lock(out):  # the first command, training the run
        with log.open("w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "pipeline.train", *ARGS, "--out", str(out)], env=ENV,
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
        deadline = time.monotonic() + 120
        while "another process is training this run; waiting for it" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the second command never waited"
            time.sleep(0.1)
        for name in (*RECORDS, MODEL):  # the first command finishes the run
            shutil.copy2(straight_dir / name, out / name)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "epoch 1/" not in log.read_text()  # the second found it finished
    assert json.loads(stdout)["test_accuracy"] == metrics["test_accuracy"]


_POOL = """
import os, sys, time
from pathlib import Path
if __name__ != "__main__":  # a spawned pool worker re-imports this file first: slowly, as it imports torch
    Path(os.environ["MARKS"], str(os.getpid())).touch()
    time.sleep(120)
from pipeline.config import RunConfig
from pipeline.runs.store import run_all
if __name__ == "__main__":
    try:
        run_all([RunConfig(seed=0), RunConfig(seed=1)], sys.argv[1], workers=2)
    except KeyboardInterrupt:  # what a stage does (one line, exit 130)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
"""


def test_ctrl_c_while_pool_workers_import_prints_only_the_stages_line(tmp_path):
    (tmp_path / "stage.py").write_text(_POOL)
    marks = tmp_path / "marks"
    marks.mkdir()
    proc = subprocess.Popen([sys.executable, "stage.py", str(tmp_path / "store")], cwd=tmp_path,
                            env={**ENV, "MARKS": str(marks)}, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,  # its own process group, as a terminal's foreground job
                            preexec_fn=_interruptible)
    deadline = time.monotonic() + 120
    while len(list(marks.iterdir())) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the pool workers never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the stage and its workers
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "interrupted\n")
    deadline = time.monotonic() + 30
    while True:  # the workers are gone too
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a pool worker outlived the stage"
        time.sleep(0.1)


def test_a_ray_address_where_no_ray_head_answers_fails_in_seconds_in_one_line(tmp_path):
    pytest.importorskip("ray")
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts connections, never answers
        address = f"127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(ConfigError) as err:
            run_all([RunConfig.from_dict(CFG)], tmp_path, workers=1, compute={"backend": "ray", "ray_address": address})
    assert time.monotonic() - start < 2 * PROBE_SECONDS + 2
    assert str(err.value) == (f"compute.ray_address '{address}': something listens at {address} but it is no Ray "
                              "head (no gRPC answer within 3 s); give the address `ray start --head` printed on the "
                              "head (port 6379 by default), or set compute.ray_address to '' for a local Ray instance")


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


def _write_records(run_dir: Path, cfg: RunConfig, metrics: dict, with_history: bool = True) -> None:
    """A run's records as a stage exports them: metrics.json, and history.csv unless it diverged in epoch 1."""
    run_dir.mkdir(parents=True)
    (run_dir / METRICS).write_text(json.dumps({**metrics, "config": cfg.to_dict()}))
    if with_history:
        rows = {"epoch": [1, 2], "loss": [2.0, 1.0], "train_accuracy": [0.3, 0.6], "val_accuracy": [0.3, 0.5],
                "rate_mean": [0.2, 0.1], "lam": [0.1, 0.2]}
        pd.DataFrame({c: rows.get(c, [0.5, 0.5]) for c in HISTORY_COLUMNS}).to_csv(run_dir / HISTORY, index=False)


def _fake_artifacts(params: dict, broken: str) -> None:
    """Every training stage's outputs for `params`, made up; setting `broken`'s baseline diverged at every λ_WD
    (in epoch 1: no history) and so did its Ω_syn run at the largest λ'."""
    layout, settings = Layout("default"), params["settings"]
    write_checked(params, layout.checked)
    art = layout.artifacts
    tune = tune_wd_plan(settings, params, layout.splits)
    tuned = [_fake_metrics(i, name == broken) for i, (name, _) in enumerate(tune)]
    baselines = choose_baseline(tune, tuned)
    (art / "tune_wd").mkdir(parents=True)
    (art / "tune_wd" / "baseline.json").write_text(json.dumps(baselines))
    write_points(tune, tuned, baselines, art / "tune_wd" / "points.csv")
    for (name, cfg), m in zip(tune, tuned):
        _write_records(art / "tune_wd" / "runs" / run_id(cfg), cfg, m, with_history=name != broken)
    top = max(params["penalty"]["lam_norms"])
    plan = [run for kind in ("syn", "total", "balance") for run in penalty_plan(settings, params, layout.splits, kind,
                                                                                  baselines)]
    runs = [_fake_metrics(i, name == broken and cfg.lam_norm == top) for i, (name, cfg) in enumerate(plan)]
    write_points(plan, runs, baselines, art / "train" / "points.csv")
    for (name, cfg), m in zip(plan, runs):
        _write_records(art / "train" / "runs" / run_id(cfg), cfg, m, with_history=not m["diverged"])
    plan = ann2snn_plan(settings, params, layout.splits, baselines)
    write_rows([point_row(name, cfg, {**_fake_metrics(i), "T": T}, baseline_energy(baselines[name]),
                          curve="ann2snn", T=T)
                for i, (_, name, cfg) in enumerate(plan) for T in params["ann2snn"]["T"]], art / "ann2snn" / "points.csv")
    plan = grid_plan(settings, params, layout.splits)
    runs = [_fake_metrics(i, name == broken and cfg.lam == cfg.weight_decay == cfg.bn_decay == 0)
            for i, (name, cfg) in enumerate(plan)]
    write_rows([point_row(name, cfg, m, ref) for (name, cfg), m, ref in zip(plan, runs, grid_references(plan, runs))],
               art / "grid" / "points.csv")


def test_a_diverged_baseline_skips_its_curves_with_one_warning(repo, capsys, caplog):
    def change(p):
        p["settings"].append({**p["settings"][0], "name": "steady", "lr": 0.01})
        p["figures"]["models"] = ["cnn7"]
    edit(repo / "params.yaml", change)
    params = resolve("default")
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
    params = resolve("default")
    _fake_artifacts(params, params["settings"][0]["name"])
    done = subprocess.run([sys.executable, "stages/score.py", "default"], cwd=repo, env=ENV, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "diverged at every λ_WD" in done.stderr


def test_without_divergence_the_tables_keep_their_columns(repo, capsys, caplog):
    edit(repo / "params.yaml", lambda p: p["figures"].update(models=["cnn7"]))
    params = resolve("default")
    _fake_artifacts(params, broken="")
    with caplog.at_level("WARNING"):
        assert stage("score", capsys) == (0, "") and stage("figures", capsys) == (0, "")
    assert _warnings(caplog) == []
    for table in ("tradeoff_points", "tradeoff_scores", "method_comparison"):
        assert "note" not in pd.read_csv(repo / "results" / "default" / "tables" / f"{table}.csv").columns
    (curves,) = (repo / "results" / "default" / "plots" / "curves").iterdir()
    assert pd.read_csv(curves)["run"].nunique() == 4  # baseline and three λ'


def test_an_item_that_is_not_a_safe_name_is_refused_before_any_path(repo, capsys):
    code, err = stage("score", capsys, "../../escape")
    assert code == 2 and err.startswith("error: stage argument 'item' must be a file or folder name")
    assert not list(repo.parent.glob("escape*"))
