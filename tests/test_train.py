"""Training engine: objective, schedule, metrics files, resume, corrupt checkpoints, divergence, CLI."""
import csv
import json

import pytest
import torch
from torch import nn

import pipeline.train as train
from pipeline.config import ConfigError, RunConfig
from pipeline.energy import ActivityMeter
from pipeline.models import create_model
from pipeline.neuron import neurons
from pipeline.penalties import omega_all_firing
from pipeline.rundir import CHECKPOINT, HISTORY, METRICS
from pipeline.train import evaluate, l2_penalty, lam_coefficient, main, train_run

TINY = dict(dataset="digits", model="cnn7", width=0.125, limit_train=200, batch_size=50, epochs=2,
            penalty="syn", lam_norm=4.0, seed=0)


def _tiny(**kw) -> RunConfig:
    return RunConfig.from_dict({**TINY, **kw})


def _result(metrics: dict) -> dict:
    """Metrics without wall time (the only field that may differ between identical runs)."""
    return {k: v for k, v in metrics.items() if k != "epoch_seconds"}


def _history(out) -> list[dict]:
    rows = list(csv.DictReader((out / HISTORY).open()))
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]


def test_lam_schedule_is_linear_and_normalized():
    cfg = RunConfig(penalty="syn", lam_norm=8.0, epochs=4)
    assert [lam_coefficient(cfg, e, 100.0) for e in (1, 2, 4)] == [0.02, 0.04, 0.08]
    assert lam_coefficient(RunConfig(penalty="total", lam=0.5, epochs=5), 1, 100.0) == pytest.approx(0.1)


def test_l2_penalty_covers_weights_and_bn_when_switched_on():
    model = create_model("cnn7", in_channels=1, width=0.125)
    weights = sum(float(m.weight.detach().square().sum()) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    bn = sum(float(m.weight.detach().square().sum() + m.bias.detach().square().sum())
             for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert float(l2_penalty(model, 0).detach()) == pytest.approx(weights, rel=1e-5)
    assert float(l2_penalty(model, 1).detach()) == pytest.approx(weights + bn, rel=1e-5)


def test_cli_command_writes_metrics_and_history(tmp_path):
    out = tmp_path / "run"
    rc = main(["--dataset", "digits", "--model", "cnn7", "--width", "0.25", "--epochs", "1", "--penalty", "syn",
               "--p", "1", "--lam-norm", "8", "--seed", "0", "--out", str(out)])
    assert rc == 0
    metrics = json.loads((out / METRICS).read_text())
    for key in ("test_accuracy", "val_accuracy", "energy_pj", "energy_pj_layers", "rate_mean",
                "rate_sum", "rate_layers", "dead_rate", "diverged", "epoch_seconds", "epochs_run", "config"):
        assert key in metrics
    assert metrics["diverged"] is False and metrics["epochs_run"] == 1
    assert metrics["energy_pj"] == pytest.approx(sum(metrics["energy_pj_layers"].values()))
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["config"]["lam_norm"] == 8.0
    rows = list(csv.DictReader((out / HISTORY).open()))
    assert len(rows) == 1 and {"epoch", "loss", "train_accuracy", "val_accuracy", "rate_mean", "lam"} <= set(rows[0])
    assert float(rows[0]["lam"]) == pytest.approx(8.0 / omega_all_firing(
        [m.psi for _, m in neurons(create_model("cnn7", in_channels=1, width=0.25))], "syn", 1.0))
    assert not (out / CHECKPOINT).exists() and (out / "model.pt").exists() and (out / "split.json").exists()


def test_progress_bar_is_silent_without_a_terminal(tmp_path, capfd):
    train_run(_tiny(epochs=1, limit_train=50), tmp_path / "run")
    assert "it/s" not in capfd.readouterr().err


def test_same_seed_same_metrics_and_resume_equals_straight_run(tmp_path):
    cfg = _tiny(epochs=4)
    straight = train_run(cfg, tmp_path / "straight")
    assert train_run(cfg, tmp_path / "again") is not None
    assert _result(json.loads((tmp_path / "again" / METRICS).read_text())) == _result(straight)

    assert train_run(cfg, tmp_path / "resumed", stop_after=2) is None
    assert (tmp_path / "resumed" / CHECKPOINT).exists() and not (tmp_path / "resumed" / METRICS).exists()
    resumed = train_run(cfg, tmp_path / "resumed")
    assert _result(resumed) == _result(straight)
    assert _history(tmp_path / "resumed") == _history(tmp_path / "straight")


def _damage(path, how: str) -> None:
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    else:  # a readable checkpoint whose weights do not fit the model
        ckpt = torch.load(path, weights_only=True)
        ckpt["model"]["conv1.weight"] = torch.zeros(3)
        torch.save(ckpt, path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_corrupt_checkpoint_restarts_from_scratch(tmp_path, caplog, damage):
    cfg = _tiny()
    straight = train_run(cfg, tmp_path / "straight")
    out = tmp_path / "run"
    train_run(cfg, out, stop_after=1)
    _damage(out / CHECKPOINT, damage)
    with caplog.at_level("WARNING", logger="pipeline.train"):
        metrics = train_run(cfg, out)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "starting from scratch" in warnings[0] and "\n" not in warnings[0]
    assert _result(metrics) == _result(straight)


def test_finished_run_is_returned_not_retrained(tmp_path, monkeypatch):
    cfg = _tiny(epochs=1, limit_train=50)
    first = train_run(cfg, tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(train, "_train_epoch", no_training)
    assert train_run(cfg, tmp_path) == first


def test_other_config_in_the_directory_is_refused_and_kept(tmp_path):
    cfg = _tiny(epochs=1, limit_train=50)
    train_run(cfg, tmp_path)
    before = (tmp_path / METRICS).read_bytes()
    with pytest.raises(ConfigError, match=r"seed: 0 there, 1 here") as e:
        train_run(_tiny(epochs=1, limit_train=50, seed=1), tmp_path)
    assert "\n" not in str(e.value) and (tmp_path / METRICS).read_bytes() == before


def test_nan_loss_records_a_diverged_run(tmp_path):
    out = tmp_path / "run"
    rc = main(["--dataset", "digits", "--width", "0.125", "--limit-train", "50", "--epochs", "2",
               "--penalty", "syn", "--lam", "1e308", "--out", str(out)])  # λ·Ω overflows to inf
    assert rc == 0
    metrics = json.loads((out / METRICS).read_text())
    assert metrics["diverged"] is True and metrics["test_accuracy"] == metrics["val_accuracy"] == 0.1
    assert metrics["epochs_run"] == 1 and metrics["energy_pj"] >= 0


def test_evaluate_counts_accuracy_and_feeds_the_meter():
    model = create_model("cnn7", in_channels=1, width=0.125)
    x, y = torch.randn(8, 1, 32, 32), torch.randint(0, 10, (8,))
    meter = ActivityMeter(model)
    acc = evaluate(model, [(x[:5], y[:5]), (x[5:], y[5:])], meter)
    model.eval()
    with torch.no_grad():
        assert acc == pytest.approx(float((model(x).argmax(1) == y).float().mean()))
    assert meter.summary()["examples"] == 8


@pytest.mark.parametrize("args,message", [
    (["--p", "0.5"], "config key 'p' must be >= 1 (got 0.5)"),
    (["--optimizer", "rmsprop"], "config key 'optimizer' must be one of adam, msgd"),
    (["--p", "abc"], "argument --p: invalid float value: 'abc'"),
])
def test_cli_bad_input_is_one_line_exit_2_and_keeps_files(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    rc = main(args + ["--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "precious"


def test_cli_missing_dataset_names_the_directory(tmp_path, capsys, no_fashion_mnist_package):
    rc = main(["--dataset", "fashion_mnist", "--data-dir", str(tmp_path / "none"), "--no-download",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "none") in err and err.count("\n") == 1



def test_a_warm_start_begins_from_the_parent_runs_final_weights(tmp_path):
    parent = _tiny(epochs=1, limit_train=50, neuron="qrelu", lam_norm=0.0)
    train_run(parent, tmp_path / "parent")
    child = _tiny(epochs=1, limit_train=50, neuron="qrelu", lam_norm=4.0, warm_start="parent")
    state = train._fresh_run(child, torch.device("cpu"), tmp_path / "child").model.state_dict()
    final = torch.load(tmp_path / "parent" / "model.pt", weights_only=True)
    assert state.keys() == final.keys() and all(torch.equal(state[k], final[k]) for k in final)
    cold = train._fresh_run(_tiny(epochs=1, neuron="qrelu"), torch.device("cpu"), tmp_path / "child").model
    assert not torch.equal(cold.state_dict()["conv1.weight"], final["conv1.weight"])
    assert child.identity() != _tiny(epochs=1, limit_train=50, neuron="qrelu", lam_norm=4.0).identity()
    with pytest.raises(FileNotFoundError, match="holds no finished run to warm-start from; train it first"):
        train_run(_tiny(epochs=1, limit_train=50, warm_start="absent"), tmp_path / "orphan")
