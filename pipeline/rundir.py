"""The layout of a run directory: the one place that spells a run product's file name and reads one back.

`pipeline.train` writes a run into its directory; the run store
(`pipeline.runs.store`) keeps one directory per configuration and copies the
finished products into the stages' DVC outputs. `finished_metrics` reads a
finished run back and `read_history` a run's history, each checked
(`fileio.read_back`): a damaged file is set aside. One process trains a run
directory at a time: `run_lock` holds its `LOCK` (the command line and every
backend of the run store take it).
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from pipeline.config import Rule, check, identity_mismatch, result_keys
from pipeline.fileio import DamagedFile, probe_writable, read_back, set_aside

__all__ = ["CHECKPOINT", "HISTORY", "HISTORY_COLUMNS", "LOCK", "METRICS", "MODEL", "RECORDS", "SPLIT",
           "clear_blockers", "finished_metrics", "parse_history", "parse_metrics", "read_history", "run_lock"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"  # after every epoch, until the run finishes; a rerun resumes from it
HISTORY = "history.csv"  # one row per finished epoch
SPLIT = "split.json"  # the train/validation split, unless the config names a split_file
METRICS = "metrics.json"  # written last: its presence marks a finished run
MODEL = "model.pt"  # the final state_dict
RECORDS = (METRICS, HISTORY)  # what a stage keeps of a finished run (its model stays in the run store)
LOCK = ".lock"  # held (flock) while a process trains the run

HISTORY_COLUMNS = ("epoch", "lr", "lam", "loss", "ce", "train_accuracy", "train_rate_mean",
                   "val_accuracy", "rate_mean", "energy_pj", "epoch_seconds")

_FRACTION = Rule(float, 0, maximum=1, inclusive=True)
_AMOUNT = Rule(float, 0)
# What the pipeline reads of a finished run's metrics; a diverged run's energies and rates may be NaN or inf.
_METRICS = {"test_accuracy": _FRACTION, "val_accuracy": _FRACTION, "dead_rate": _FRACTION, "energy_pj": _AMOUNT,
            "rate_mean": _AMOUNT, "rate_sum": _AMOUNT, "epoch_seconds": _AMOUNT, "diverged": Rule(bool),
            "config": Rule(dict)}
_UNBOUNDED_WHEN_DIVERGED = ("energy_pj", "rate_mean", "rate_sum")
_NUMBER = Rule(float)  # every history value


def parse_metrics(data: bytes) -> dict:
    """A finished run's metrics.json: a mapping whose fields the pipeline reads have their types and ranges
    (accuracies and the dead rate in [0, 1], energies, rates and times >= 0, finite unless diverged)."""
    metrics = json.loads(data)
    if not isinstance(metrics, dict):
        raise ValueError(f"holds {type(metrics).__name__}, not a mapping")
    missing = [k for k in _METRICS if k not in metrics]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    diverged = metrics["diverged"] is True
    for key, rule in _METRICS.items():
        loose = diverged and key in _UNBOUNDED_WHEN_DIVERGED
        check(key, metrics[key], replace(rule, finite=False) if loose else rule, "metrics key")
    return metrics


def parse_history(data: bytes) -> list[dict[str, float]]:
    """A history.csv: UTF-8, the header `HISTORY_COLUMNS`, one row of finite numbers per epoch 1, 2, …"""
    reader = csv.DictReader(io.StringIO(data.decode()))
    if tuple(reader.fieldnames or ()) != HISTORY_COLUMNS:
        raise ValueError(f"has the columns {reader.fieldnames}, not {list(HISTORY_COLUMNS)}")
    rows = []
    for epoch, row in enumerate(reader, start=1):
        values = {key: check(f"row {epoch} {key}", float(text) if text else None, _NUMBER, "history value")
                  for key, text in row.items()}
        if values["epoch"] != epoch:
            raise ValueError(f"row {epoch} is epoch {values['epoch']:g}")
        rows.append(values)
    return rows


def read_history(path: Path | str) -> list[dict[str, float]]:
    """The rows of the history.csv at `path` (`parse_history`); a damaged one is set aside and DamagedFile
    raised, one line naming it."""
    return read_back(path, parse_history)


def _products_problem(out_dir: Path) -> str | None:
    """What keeps a run whose metrics.json is valid from being finished (None: nothing)."""
    if not (out_dir / MODEL).is_file():
        return f"{out_dir / MODEL} is missing"
    if (out_dir / HISTORY).exists():
        try:
            read_history(out_dir / HISTORY)
        except DamagedFile as e:
            return str(e)
    return None


def finished_metrics(identity: dict, out_dir: Path) -> dict | None:
    """The metrics of a finished run with config `identity` in `out_dir`, or None.

    A finished run has a valid metrics.json (`parse_metrics`), its model and, if it has one, a valid history.
    A damaged metrics.json or history is set aside (renamed `<name>.bad-<time>`, one warning line) and the
    run trains again; so it does without its model, its metrics set aside with it. A metrics.json of a run
    with another config raises a ConfigError and is kept.
    """
    path = out_dir / METRICS
    if not path.exists():
        return None
    try:
        metrics = read_back(path, parse_metrics)
    except DamagedFile as e:
        log.warning("%s, training the run again", e)
        return None
    stored = result_keys(metrics["config"])
    if stored != identity:
        raise identity_mismatch(stored, identity, path)
    problem = _products_problem(out_dir)
    if problem is not None:
        log.warning("%s; %s set aside as %s with it, training the run again", problem, METRICS, set_aside(path).name)
        return None
    return metrics


def clear_blockers(out_dir: Path) -> None:
    """Set aside a directory standing where a run product belongs (it would fail the first write)."""
    for name in (METRICS, CHECKPOINT, HISTORY, MODEL):
        if (out_dir / name).is_dir():
            log.warning("%s is a directory, not a file; set aside as %s", out_dir / name,
                        set_aside(out_dir / name).name)


@contextlib.contextmanager
def run_lock(out_dir: Path | str) -> Iterator[None]:
    """Hold an exclusive lock on `out_dir/LOCK` (the directory is created and probed: `PathError` if it cannot
    be written); waits, saying so in one line, while another process holds it.

    The kernel drops the lock when its holder dies, so a killed trainer never leaves a stale claim; on a
    cluster the directory must be on a filesystem whose `flock` works across nodes (NFSv4, Lustre, CephFS).
    """
    out_dir = Path(out_dir)
    probe_writable(out_dir, "run directory")
    with open(out_dir / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{out_dir}: another process is training this run; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
