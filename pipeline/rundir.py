"""The layout of a run directory: the one place that spells a run product's file name.

`pipeline.train` writes a run into its directory; the run store
(`pipeline.runs.store`) keeps one directory per configuration and copies the
finished products into the stages' DVC outputs. `finished_metrics` reads a
finished run back, setting damaged products aside.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.config import identity_mismatch, result_keys
from pipeline.fileio import one_line, set_aside

__all__ = ["CHECKPOINT", "HISTORY", "METRICS", "MODEL", "RECORDS", "SPLIT", "clear_blockers", "finished_metrics"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"  # after every epoch, until the run finishes; a rerun resumes from it
HISTORY = "history.csv"  # one row per finished epoch
SPLIT = "split.json"  # the train/validation split, unless the config names a split_file
METRICS = "metrics.json"  # written last: its presence marks a finished run
MODEL = "model.pt"  # the final state_dict
RECORDS = (METRICS, HISTORY)  # what a stage keeps of a finished run (its model stays in the run store)


_NUMBERS = ("test_accuracy", "val_accuracy", "energy_pj", "rate_mean", "rate_sum", "dead_rate", "epoch_seconds")


def _metrics_problem(metrics: object) -> str | None:
    """What makes `metrics` unusable as a finished run's metrics.json (None: nothing)."""
    if not isinstance(metrics, dict):
        return f"holds {type(metrics).__name__}, not a mapping"
    missing = [k for k in (*_NUMBERS, "diverged", "config") if k not in metrics]
    if missing:
        return f"lacks {', '.join(missing)}"
    bad = [k for k in _NUMBERS if isinstance(metrics[k], bool) or not isinstance(metrics[k], (int, float))]
    bad += [k for k, kind in (("diverged", bool), ("config", dict)) if not isinstance(metrics[k], kind)]
    return f"has a malformed {', '.join(bad)}" if bad else None


def finished_metrics(identity: dict, out_dir: Path) -> dict | None:
    """The metrics of a finished run with config `identity` in `out_dir`, or None.

    A metrics.json that cannot be read or lacks a field the pipeline reads is set aside
    (renamed `metrics.json.bad-<time>`, one warning line) and the run trains again; one
    of a run with another config raises a ConfigError and is kept.
    """
    path = out_dir / METRICS
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
        problem = _metrics_problem(metrics)
    except (OSError, ValueError) as e:
        problem = f"is unreadable ({type(e).__name__}: {one_line(e, 80)})"
    if problem is not None:
        log.warning("%s %s; set aside as %s, training the run again", path, problem, set_aside(path).name)
        return None
    stored = result_keys(metrics["config"])
    if stored != identity:
        raise identity_mismatch(stored, identity, path)
    return metrics


def clear_blockers(out_dir: Path) -> None:
    """Set aside a directory standing where a run product belongs (it would fail the first write)."""
    for name in (METRICS, CHECKPOINT, HISTORY, MODEL):
        if (out_dir / name).is_dir():
            log.warning("%s is a directory, not a file; set aside as %s", out_dir / name,
                        set_aside(out_dir / name).name)
