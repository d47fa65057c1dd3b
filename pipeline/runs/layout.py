"""Where one pipeline item writes: `Layout` — the paths every stage of `dvc.yaml` reads and writes.

An item is a profile in dvc.yaml's `profiles` list: `artifacts/<item>/` holds its stages' intermediate
products (the checked params, the splits, each experiment's points table and run records), and
`results/<item>/` its published tables, figures, plot series and metrics.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """The paths of pipeline item `item`, relative to the repository root."""

    item: str

    @property
    def artifacts(self) -> Path:
        return Path("artifacts") / self.item

    @property
    def results(self) -> Path:
        return Path("results") / self.item

    @property
    def checked(self) -> Path:
        """The `check` stage's output: the validated params, one JSON file per section."""
        return self.artifacts / "params"

    @property
    def splits(self) -> Path:
        return self.artifacts / "splits"

    def experiment(self, name: str) -> Path:
        """The output folder of experiment stage `name` (tune_wd, train, grid, ann2snn): `points.csv`, `runs/`."""
        return self.artifacts / name

    @property
    def baselines(self) -> Path:
        """The tuned baseline of every setting (`tune_wd`)."""
        return self.experiment("tune_wd") / "baseline.json"

    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def headline(self) -> Path:
        """The headline metrics (`dvc exp show` compares the default item's)."""
        return self.results / "metrics.json"

    @property
    def environment(self) -> Path:
        """What produced the item's runs: versions, CPU, ISA, threads, pinning (`pipeline.numerics`)."""
        return self.results / "environment.json"

    @property
    def reference(self) -> Path:
        """The sample of runs `python -m pipeline.runs.verify` retrains and compares bit for bit."""
        return self.results / "reference.json"

    def load_baselines(self) -> dict[str, dict]:
        """The tuned baseline of every setting, as the `tune_wd` stage recorded it."""
        return json.loads(self.baselines.read_text())
