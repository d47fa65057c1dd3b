"""What the stage scripts share: artifact paths, running a plan, its points table, one-line errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from pipeline.data import DataError
from pipeline.fileio import one_line, write_atomic
from pipeline.runs.plans import Plan, baseline_energy, describe, point_row
from pipeline.runs.store import export_runs, run_all

__all__ = ["ARTIFACTS", "BASELINES", "CHECKED", "HEADLINE", "RESULTS", "SPLITS", "load_baselines", "run_plan", "run_stage",
           "write_points", "write_rows"]

ARTIFACTS = Path("artifacts")
CHECKED = ARTIFACTS / "checked"  # the `check` stage's stamp: every later stage runs after it
SPLITS = ARTIFACTS / "splits"
BASELINES = ARTIFACTS / "tune_wd" / "baseline.json"
RESULTS = Path("results")
HEADLINE = RESULTS / "metrics.json"  # the DVC metrics file (not a run's metrics)


def load_baselines() -> dict[str, dict]:
    """The tuned baseline of every setting, as the `tune_wd` stage recorded it."""
    return json.loads(BASELINES.read_text())


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
