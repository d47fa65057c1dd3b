"""The Ray backend and the shared run store: same numbers as local, a killed worker resumes, one trainer per run.

The Ray tests share one small local Ray instance (2 CPUs), started once for the module.
"""
import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pipeline.config import ConfigError, RunConfig
from pipeline.rundir import run_lock
from pipeline.runs.lock import locked_run
from pipeline.runs.store import run_all, run_id
from pipeline.train import train_run

ray = pytest.importorskip("ray")
from pipeline.runs import ray_backend  # noqa: E402

RESULT_KEYS = ("test_accuracy", "val_accuracy", "energy_pj", "energy_pj_layers", "rate_mean", "rate_sum",
               "rate_layers", "dead_rate", "diverged", "epochs_run")
TINY = dict(dataset="digits", model="cnn7", width=0.0625, epochs=2, limit_train=100, threads=1, randaugment=False,
            penalty="syn")


def tiny(lam_norm: float, **more) -> RunConfig:
    return RunConfig.from_dict({**TINY, "lam_norm": lam_norm, **more})


def numbers(metrics: dict) -> dict:
    return {k: metrics[k] for k in RESULT_KEYS}


@pytest.fixture(scope="module")
def ray_instance():
    started = ray_backend.connect(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """Two tiny runs trained on the local backend, one after the other."""
    configs = [tiny(4.0), tiny(64.0)]
    return configs, run_all(configs, tmp_path_factory.mktemp("local"), workers=1)


def test_ray_backend_gives_the_local_numbers(ray_instance, local_reference, tmp_path, capsys, monkeypatch):
    configs, local = local_reference
    monkeypatch.chdir(tmp_path)  # a relative store, as params.yaml names it: the tasks run where the stage runs
    store = Path("store")
    on_ray = run_all(configs, store, workers=1, compute={"backend": "ray", "threads": 1, "gpus_per_run": 0})
    assert [numbers(m) for m in on_ray] == [numbers(m) for m in local]
    err = capsys.readouterr().err
    assert "[1/2" in err and "[2/2" in err and "test accuracy" in err
    # finished runs are never resubmitted: a second pass needs no Ray at all (this address answers nothing)
    again = run_all(configs, store, workers=1, compute={"backend": "ray", "ray_address": "127.0.0.1:9"})
    assert [numbers(m) for m in again] == [numbers(m) for m in local]


def test_a_killed_worker_is_retried_and_resumes(ray_instance, local_reference, tmp_path):
    configs, local = local_reference
    store = tmp_path / "store"
    out = store / run_id(configs[0])

    def killed_after_epoch_1(cfg: RunConfig, out: Path) -> dict:
        """First attempt: one epoch (checkpointed), then publish the pid and wait to be killed."""
        if not (out / "pid").exists():
            train_run(cfg, out, stop_after=1)
            (out / "pid").write_text(str(os.getpid()))
            time.sleep(600)
        (out / "retry_pid").write_text(str(os.getpid()))
        assert (out / "checkpoint.pt").exists()  # the retry resumes after epoch 1
        return train_run(cfg, out)

    def killer() -> None:
        deadline = time.monotonic() + 120
        while not (out / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        os.kill(int((out / "pid").read_text()), signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    (result,) = run_all(configs[:1], store, workers=1, fn=killed_after_epoch_1,
                        compute={"backend": "ray", "max_retries": 2})
    thread.join(5)
    assert (out / "pid").read_text() != (out / "retry_pid").read_text()  # killed after epoch 1, retried
    assert numbers(result) == numbers(local[0])
    assert len((out / "history.csv").read_text().splitlines()) == 1 + TINY["epochs"]


def test_a_task_error_ends_the_stage_in_one_line(ray_instance, tmp_path):
    def broken(cfg: RunConfig, out: Path) -> dict:
        raise ConfigError("config key 'x' is wrong")

    with pytest.raises(ConfigError, match=r"^config key 'x' is wrong$"):
        run_all([tiny(4.0)], tmp_path, workers=1, fn=broken, compute={"backend": "ray", "max_retries": 0})


def test_an_unreachable_address_fails_fast_in_one_line(tmp_path, monkeypatch):
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"compute.ray_address '127.0.0.1:9'.*ray start --head") as err:
        run_all([tiny(4.0)], tmp_path, workers=1, compute={"backend": "ray", "ray_address": "127.0.0.1:9"})
    assert "\n" not in str(err.value) and time.monotonic() - start < 10
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_backend.tempfile, "gettempdir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match=r"'auto' but this node belongs to no Ray cluster"):
        ray_backend.resolve_address("auto")
    with pytest.raises(ConfigError, match=r"must be '', 'auto' or host:port"):
        ray_backend._probe("nohost", "nohost")


def _claim(out: str, log: str) -> None:
    """Stands in for a stage training the run in `out`: under its lock, train unless it is finished."""

    def fake_train(cfg: RunConfig, out: Path) -> dict:
        if (out / "metrics.json").exists():
            return json.loads((out / "metrics.json").read_text())
        with open(log, "a") as f:
            f.write(f"start {time.monotonic()}\n")
        time.sleep(1.0)
        with open(log, "a") as f:
            f.write(f"end {time.monotonic()}\n")
        (out / "metrics.json").write_text(json.dumps({"test_accuracy": 1.0, "energy_pj": 1.0}))
        return {"test_accuracy": 1.0, "energy_pj": 1.0}

    locked_run(fake_train, RunConfig(), Path(out))


def test_two_claimants_never_train_the_same_run_at_once(tmp_path):
    out, log = tmp_path / "store" / "run", tmp_path / "log"
    ctx = multiprocessing.get_context("fork")  # two processes; fork spares them importing torch anew
    procs = [ctx.Process(target=_claim, args=(str(out), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["start", "end"]  # trained once
    with run_lock(out):  # released by both
        pass


def test_seeded_loader_workers_give_the_same_run_on_ray(ray_instance, tmp_path):
    cfg = tiny(4.0, randaugment=True, loader_workers=2)
    (local,) = run_all([cfg], tmp_path / "local", workers=1, compute={"threads": 1})
    (on_ray,) = run_all([cfg], tmp_path / "ray", workers=1, compute={"threads": 1, "backend": "ray"})
    assert numbers(on_ray) == numbers(local)
    assert (tmp_path / "ray" / run_id(cfg) / "metrics.json").exists()
