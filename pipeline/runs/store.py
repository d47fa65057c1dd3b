"""Many runs at once: a run store keyed by configuration, parallel workers, exports.

Every run trains in `store/<run id>/`, where the id is a hash of the
configuration keys that determine its result and of the training code
(`training_code()`: every module `pipeline.train` imports, found by reading
the imports; edit one and every run trains anew; the DVC stages depend on the
whole `pipeline/` folder, which holds them all). The store lives outside DVC's
outputs, so a stage that DVC reruns (after a change, or after being killed)
finds its finished runs there and resumes unfinished ones from their
checkpoints; only new configurations train. A stage then copies each run's
products into its DVC output directory, which DVC caches (and restores from
its run-cache when a change is reverted).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Sequence

from pipeline.config import RunConfig
from pipeline.rundir import PRODUCTS
from pipeline.train import train_run

__all__ = ["export_runs", "run_all", "run_id", "training_code"]

_PACKAGE = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    """The `pipeline.*` modules that the source file at `path` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
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


def _worker(job: tuple[Callable[[RunConfig, Path], dict], RunConfig, Path]) -> dict:
    fn, cfg, out = job
    return fn(cfg, out)


def run_all(configs: Sequence[RunConfig], store: Path | str, workers: int,
            fn: Callable[[RunConfig, Path], dict] = train_run, label: Callable[[RunConfig], str] = run_id
            ) -> list[dict]:
    """Run `fn(cfg, store/run_id)` for every configuration on `workers` processes; results in order.

    Identical configurations run once. Each finished run prints one line: runs done / total,
    elapsed time and the estimated time left (elapsed / done × left).
    """
    keys = [run_id(c) for c in configs]
    jobs = {key: (fn, cfg, Path(store) / key) for key, cfg in zip(keys, configs)}
    start, results = time.perf_counter(), {}
    with ExitStack() as stack:
        if workers == 1 or len(jobs) == 1:
            outcomes = map(_worker, jobs.values())
        else:
            pool = stack.enter_context(
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            outcomes = pool.map(_worker, jobs.values())
        for i, (key, result) in enumerate(zip(jobs, outcomes), start=1):
            results[key] = result
            elapsed = time.perf_counter() - start
            print(f"[{i}/{len(jobs)} {elapsed:5.0f}s, ~{elapsed / i * (len(jobs) - i):4.0f}s left] "
                  f"{label(jobs[key][1])}: "
                  f"test accuracy {result['test_accuracy']:.3f}, energy {result['energy_pj']:.4g} pJ"
                  f"{' (diverged)' if result.get('diverged') else ''}", file=sys.stderr, flush=True)
    return [results[key] for key in keys]


def export_runs(configs: Sequence[RunConfig], store: Path | str, out_dir: Path | str) -> None:
    """Copy each run's products from the store into `out_dir/<run id>/` (a DVC output)."""
    for cfg in configs:
        source, target = Path(store) / run_id(cfg), Path(out_dir) / run_id(cfg)
        target.mkdir(parents=True, exist_ok=True)
        for name in PRODUCTS:
            if (source / name).exists():
                shutil.copy2(source / name, target / name)
