"""The layout of a run directory: the one place that spells a run product's file name.

`pipeline.train` writes a run into its directory; the run store
(`pipeline.runs.store`) keeps one directory per configuration and copies the
finished products into the stages' DVC outputs.
"""
from __future__ import annotations

__all__ = ["CHECKPOINT", "HISTORY", "METRICS", "MODEL", "PRODUCTS", "SPLIT"]

CHECKPOINT = "checkpoint.pt"  # after every epoch, until the run finishes; a rerun resumes from it
HISTORY = "history.csv"  # one row per finished epoch
SPLIT = "split.json"  # the train/validation split, unless the config names a split_file
METRICS = "metrics.json"  # written last: its presence marks a finished run
MODEL = "model.pt"  # the final state_dict
PRODUCTS = (METRICS, HISTORY, MODEL)  # what a finished run hands on
