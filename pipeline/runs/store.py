"""Many runs at once: a run store keyed by configuration, parallel workers, exports.

Every run trains in `store/<run id>/`, where the id is a hash of the
configuration keys that determine its result and of the training code
(`training_code()`: every module `pipeline.train` imports, found by reading
the imports; edit one and every run trains anew; the DVC stages depend on the
whole `pipeline/` folder, which holds them all). The store lives outside DVC's
outputs, so a stage that DVC reruns (after a change, or after being killed)
finds its finished runs there and resumes unfinished ones from their
checkpoints; only new configurations train, and a reverted change finds its
runs again. A stage then copies each run's records (metrics, history) into its
output directory; the models stay in the store.

`compute.backend` picks who trains the runs: `local` (a process pool of
`compute.workers` on this machine, quiet on Ctrl-C from their first
instruction) or `ray` (one Ray task per run, on a local Ray instance or a
cluster; `pipeline.runs.ray_backend`). On both, a run trains while holding an
exclusive lock on `store/<run id>/.lock` (`pipeline.rundir.run_lock`), so two
stages or experiments that need the same configuration never train it at the
same time: the second waits, then finds it finished. On a cluster the store
must be a filesystem every node mounts (NFS or another shared filesystem with
working `flock`).
"""
from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import multiprocessing
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from pipeline.config import RunConfig
from pipeline.rundir import RECORDS
from pipeline.runs.lock import Job, locked_run
from pipeline.runs.ray_backend import run_on_ray
from pipeline.train import train_run

__all__ = ["export_runs", "progress_line", "run_all", "run_id", "training_code"]

_PACKAGE = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    """The `pipeline.*` modules that the source file at `path` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline":  # from pipeline import machine
            names.update(f"pipeline.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("pipeline.")}


@functools.cache
def training_code() -> tuple[Path, ...]:
    """The source files a training run executes: `pipeline/train.py` and everything it imports, transitively."""
    seen, todo = set(), ["pipeline.train"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += _imported_modules(_PACKAGE.parent / (module.replace(".", "/") + ".py"))
    return tuple(sorted(_PACKAGE.parent / (m.replace(".", "/") + ".py") for m in seen))


@functools.cache
def _code_fingerprint() -> str:
    return hashlib.sha1(b"".join(path.read_bytes() for path in training_code())).hexdigest()


def run_id(cfg: RunConfig) -> str:
    """A short stable hash of the run's result-determining configuration and the training code."""
    key = json.dumps([cfg.identity(), _code_fingerprint()], sort_keys=True)
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _worker(job: Job) -> dict:
    return locked_run(*job)


@contextlib.contextmanager
def _pool(jobs: Sequence[Job], workers: int) -> Iterator[Iterator[dict]]:
    """The results of `locked_run` on every job, in order, from `workers` spawned processes.

    The workers start with SIGINT ignored (they inherit it from this process, which ignores it for the
    instant it starts them), so Ctrl-C prints nothing in them, not even while they still import torch. On
    Ctrl-C this process terminates them (a run's last checkpoint is whole: it is written atomically) and the
    KeyboardInterrupt goes on to the caller, which prints the one line. On any exit, runs not started yet
    are cancelled.
    """
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    before = set(multiprocessing.active_children())
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        outcomes = pool.map(_worker, jobs)  # submitting starts the workers
    finally:
        signal.signal(signal.SIGINT, previous)
    started = set(multiprocessing.active_children()) - before
    try:
        yield outcomes
    except KeyboardInterrupt:
        for process in started:
            process.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


def progress_line(i: int, n: int, elapsed: float, name: str, result: dict) -> str:
    """The line printed when the i-th of n runs finishes: elapsed time, estimated time left, its result."""
    return (f"[{i}/{n} {elapsed:5.0f}s, ~{elapsed / i * (n - i):4.0f}s left] {name}: "
            f"test accuracy {result['test_accuracy']:.3f}, energy {result['energy_pj']:.4g} pJ"
            f"{' (diverged)' if result.get('diverged') else ''}")


def run_all(configs: Sequence[RunConfig], store: Path | str, workers: int,
            fn: Callable[[RunConfig, Path], dict] = train_run, label: Callable[[RunConfig], str] = run_id,
            compute: Mapping[str, Any] | None = None) -> list[dict]:
    """Run `fn(cfg, store/run_id)` for every configuration; results in order.

    `compute` (params.yaml's section; default: the local backend) picks the backend: `local` runs
    on `workers` processes, `ray` submits every run at once as Ray tasks (`pipeline.runs.ray_backend`).
    Identical configurations run once, each under its run lock (`run_lock`). Each finished run prints
    one line: runs done / total, elapsed time and the estimated time left (elapsed / done × left).
    """
    compute = dict(compute or {})
    backend = compute.get("backend", "local")
    keys = [run_id(c) for c in configs]
    jobs = {key: (fn, cfg, Path(store) / key) for key, cfg in zip(keys, configs)}
    start, results = time.perf_counter(), {}

    def report(key: str, result: dict) -> None:
        results[key] = result
        print(progress_line(len(results), len(jobs), time.perf_counter() - start, label(jobs[key][1]), result),
              file=sys.stderr, flush=True)

    if backend == "ray":
        run_on_ray(jobs, compute, report)
        return [results[key] for key in keys]
    with ExitStack() as stack:
        if workers == 1 or len(jobs) == 1:
            outcomes = map(_worker, jobs.values())
        else:
            outcomes = stack.enter_context(_pool(list(jobs.values()), workers))
        for key, result in zip(jobs, outcomes):
            report(key, result)
    return [results[key] for key in keys]


def export_runs(configs: Sequence[RunConfig], store: Path | str, out_dir: Path | str) -> None:
    """Copy each run's records (`rundir.RECORDS`: metrics, history) from the store into `out_dir/<run id>/`
    (a stage's output; the models stay in the store)."""
    for cfg in configs:
        source, target = Path(store) / run_id(cfg), Path(out_dir) / run_id(cfg)
        target.mkdir(parents=True, exist_ok=True)
        for name in RECORDS:
            if (source / name).exists():
                shutil.copy2(source / name, target / name)
