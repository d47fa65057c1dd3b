"""Does this machine reproduce the committed results? Retrain a small committed sample and compare bit for bit.

    python -m pipeline.runs.verify [ITEM]        (default: default)

The `score` stage writes `results/<item>/reference.json`: the tuned baseline of the item's first setting
and one Ω_syn run (its first p and seed, the middle λ' of `penalty.lam_norms`), each with its config, every
metric (accuracy, energy, every per-layer count) and every epoch's history row, and the environment that
trained it. This command trains the same configurations from scratch in a temporary run store, under this
process's pinned numerics (`pipeline.numerics`), and compares every number. It prints one line,
"reproduced bit for bit", or each number that differs beside the two environments, and exits 1.
Timings (`epoch_seconds`) and the environment record are not compared.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import RunConfig
from pipeline.rundir import HISTORY, METRICS
from pipeline.runs.layout import Layout
from pipeline.runs.plans import describe
from pipeline.runs.store import run_all, run_id

__all__ = ["compare", "main", "reference_sample", "retrain"]

_UNCOMPARED = ("epoch_seconds", "environment", "config")  # timings, what ran, and how it was called


def _record(run_dir: Path) -> dict[str, Any]:
    """A finished run's config, compared metrics, history rows (less timings) and environment."""
    metrics = json.loads((run_dir / METRICS).read_text())
    history = pd.read_csv(run_dir / HISTORY) if (run_dir / HISTORY).is_file() else pd.DataFrame()
    return {"config": metrics["config"], "environment": metrics.get("environment"),
            "metrics": {k: v for k, v in metrics.items() if k not in _UNCOMPARED},
            "history": history.drop(columns=["epoch_seconds"], errors="ignore").to_dict("records")}


def reference_sample(layout: Layout, points: pd.DataFrame, params: dict) -> dict[str, Any]:
    """The verify sample of an item (module docstring), read from its experiment stages' run records."""
    setting = params["settings"][0]["name"]
    mine = points[points["setting"] == setting]
    baseline = mine[mine["method"] == "baseline"].sort_values("seed").iloc[0]
    lam_norms = sorted(params["penalty"]["lam_norms"])
    syn = mine[(mine["method"] == "syn") & (mine["lam_norm"] == lam_norms[len(lam_norms) // 2])]
    syn = syn.sort_values(["p", "seed"]).iloc[0]
    return {"runs": [_record(layout.experiment(stage) / "runs" / row["run_id"])
                     for stage, row in (("tune_wd", baseline), ("train", syn))]}


def retrain(reference: dict[str, Any], store: Path, workers: int = 2) -> list[dict[str, Any]]:
    """The sample's runs trained anew in `store` (a fresh split file there, on the reference's device kind)."""
    configs = []
    for run in reference["runs"]:
        config = dict(run["config"])
        config["split_file"] = str(store / Path(config["split_file"]).name) if config.get("split_file") else None
        config["device"] = (run["environment"] or {}).get("device", "cpu").split(":")[0]
        configs.append(RunConfig.from_dict(config))
    run_all(configs, store, workers, label=describe)
    return [_record(store / run_id(cfg)) for cfg in configs]


def _same(a: Any, b: Any) -> bool:
    """Equal as stored: floats to the last bit (NaN equals NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def compare(reference: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """One line per number that differs between the reference's runs and `runs` (empty: bit for bit)."""
    differences = []
    for want, got in zip(reference["runs"], runs):
        name = f"{want['config'].get('penalty')} λ'={want['config'].get('lam_norm'):g} seed={want['config'].get('seed')}"
        for key in sorted(set(want["metrics"]) | set(got["metrics"])):
            if not _same(want["metrics"].get(key), got["metrics"].get(key)):
                differences.append(f"{name}: {key} committed {want['metrics'].get(key)!r}, here {got['metrics'].get(key)!r}")
        for i, (a, b) in enumerate(zip(want["history"], got["history"]), start=1):
            differences += [f"{name}: epoch {i} {k} committed {a[k]!r}, here {b.get(k)!r}" for k in a
                            if not _same(a[k], b.get(k))]
        if len(want["history"]) != len(got["history"]):
            differences.append(f"{name}: {len(want['history'])} epochs committed, {len(got['history'])} here")
    return differences


def _environment_line(label: str, record: dict | None) -> str:
    record = record or {}
    keys = ("cpu", "isa", "onednn_max_isa", "mkl_cbwr", "threads", "pinned", "device", "torch", "numpy", "python")
    return f"{label}: " + ", ".join(f"{k}={record.get(k)}" for k in keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.runs.verify", description=__doc__.splitlines()[0])
    parser.add_argument("item", nargs="?", default="default", help="the results/<item>/ to verify (default: default)")
    args = parser.parse_args(argv)
    path = Layout(args.item).reference
    if not path.is_file():
        print(f"error: {path} not found; run `dvc repro score@{args.item}` to write it", file=sys.stderr)
        return 2
    reference = json.loads(path.read_text())
    with tempfile.TemporaryDirectory(prefix="verify-") as store:
        runs = retrain(reference, Path(store))
    differences = compare(reference, runs)
    if not differences:
        print(f"results/{args.item}: reproduced bit for bit ({len(runs)} runs)")
        return 0
    print(f"results/{args.item}: {len(differences)} numbers differ", file=sys.stderr)
    for line in differences:
        print(f"  {line}", file=sys.stderr)
    print(_environment_line("  committed", reference["runs"][0]["environment"]), file=sys.stderr)
    print(_environment_line("  here     ", runs[0]["environment"]), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
