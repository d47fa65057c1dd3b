"""What the pipeline steps share: where a profile writes (`Layout`), running a plan, its points table,
one-line errors."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from pipeline.data import DataError
from pipeline.fileio import one_line, write_atomic
from pipeline.runs.plans import Plan, baseline_energy, describe, point_row
from pipeline.runs.store import export_runs, run_all

__all__ = ["DEFAULT", "Layout", "run_plan", "run_stage", "write_points", "write_rows"]


@dataclass(frozen=True)
class Layout:
    """Where one profile's pipeline writes: `artifacts` (the steps' intermediate tables and run products)
    and `results` (the published tables, figures, plot series and DVC metrics, committed)."""

    artifacts: Path
    results: Path

    @classmethod
    def of(cls, profile: str) -> Layout:
        """The default profile's artifacts are the DVC stages' outputs, `artifacts/<step>`; another profile
        (the `claims` stage) keeps its own under `artifacts/<profile>/`. Results: `results/<profile>/`."""
        return cls(Path("artifacts") / ("" if profile == "default" else profile), Path("results") / profile)

    @property
    def checked(self) -> Path:
        """The `check` step's stamp: every later step runs after it."""
        return self.artifacts / "checked"

    @property
    def splits(self) -> Path:
        return self.artifacts / "splits"

    @property
    def baselines(self) -> Path:
        """The tuned baseline of every setting (`tune_wd`)."""
        return self.artifacts / "tune_wd" / "baseline.json"

    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def headline(self) -> Path:
        """The DVC metrics file (not a run's metrics)."""
        return self.results / "metrics.json"

    def load_baselines(self) -> dict[str, dict]:
        """The tuned baseline of every setting, as the `tune_wd` step recorded it."""
        return json.loads(self.baselines.read_text())


DEFAULT = Layout.of("default")  # the DVC stages' (whichever profile params.yaml selects)


def run_plan(plan: Plan, compute: dict, out_dir: Path) -> list[dict]:
    """Train every run of `plan` in the run store and copy the products to `out_dir/runs`."""
    configs = [cfg for _, cfg in plan]
    metrics = run_all(configs, compute["store"], compute["workers"], label=describe, compute=compute)
    export_runs(configs, compute["store"], out_dir / "runs")
    return metrics


def write_rows(rows: list[dict], path: Path) -> None:
    """A stage's points table: one CSV row per run (or per converted run and T), written atomically."""
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False))


def write_points(plan: Plan, metrics: list[dict], baselines: dict[str, dict], path: Path) -> None:
    """One CSV row per run, energies relative to each setting's baseline (NaN where it diverged)."""
    write_rows([point_row(name, cfg, m, baseline_energy(baselines[name])) for (name, cfg), m in zip(plan, metrics)],
               path)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a bad parameter or missing dataset ends it with one line and exit code 2, a file-system
    error (a missing upstream artifact, a full disk) with one line and exit code 1, Ctrl-C with one line and
    exit code 130 (finished runs stay in the run store; a rerun resumes from the checkpoints)."""
    try:
        main()
    except (ValueError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a missing upstream artifact, a full disk: the environment, not a bug
        print(f"error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished runs and checkpoints are kept)",
              file=sys.stderr)
        sys.exit(130)
