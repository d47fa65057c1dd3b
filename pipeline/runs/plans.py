"""Which runs each experiment needs (spec §6), and the table row of a finished run.

A plan is a list of `(setting name, RunConfig)`. Every run of a setting shares
its keys (dataset, model, optimizer, surrogate, …) and the pipeline-wide
`compute`, `data` and `train` sections; each experiment varies its own knobs.
"""
from __future__ import annotations

import itertools
import logging
import math
import statistics
from pathlib import Path
from typing import Any, Sequence

from pipeline.config import RunConfig
from pipeline.cost_models import COST_MODELS
from pipeline.run_energy import energy_by_cost_model, run_wiring
from pipeline.runs.params import setting_config
from pipeline.runs.store import run_id

__all__ = ["Conversions", "Plan", "ann2snn_plan", "baseline_energy", "chain_levels", "cost_model_column", "cost_model_energies", "choose_baseline", "common_keys", "describe",
           "diverged_baselines", "grid_plan", "grid_references", "method", "penalty_plan", "point_row", "selected", "split_path",
           "tune_wd_plan", "warn_skipped"]

log = logging.getLogger(__name__)

Plan = list[tuple[str, RunConfig]]
_CONVERSION_KEYS = ("neuron", "encoding", "protocol", "ann_test_accuracy", "ann_energy_pj")  # converted runs only


def method(cfg: RunConfig) -> str:
    """The curve a run belongs to: its penalty key (syn, total, balance), or `baseline` without one."""
    return "baseline" if cfg.penalty == "none" else cfg.penalty


def describe(cfg: RunConfig) -> str:
    """A short human-readable name of a run for progress lines."""
    lam = f"λ'={cfg.lam_norm:g}" if cfg.lam_norm else f"λ={cfg.lam:g}"
    return (f"{cfg.model} {cfg.neuron} {cfg.penalty} p={cfg.p:g} {lam} wd={cfg.weight_decay:g} "
            f"B_BN={cfg.bn_decay} seed={cfg.seed}")


def split_path(splits_dir: Path | str, dataset: str) -> Path:
    """Where the split stage saves the train/validation/test split of `dataset`."""
    return Path(splits_dir) / f"{dataset}.json"


def common_keys(params: dict[str, Any], splits_dir: Path | str, dataset: str) -> dict[str, Any]:
    """RunConfig keys shared by every run: compute, data and train sections, and the split file."""
    compute = {k: v for k, v in params["compute"].items() if k in ("threads", "device", "loader_workers")}
    return {**compute, **params["data"], **params["train"],
            "split_file": str(split_path(splits_dir, dataset))}


def _runs(settings: Sequence[dict], params: dict, splits_dir: Path | str, grid: dict[str, Sequence]) -> Plan:
    """Every setting × every combination of the `grid` values."""
    plan = []
    for setting in settings:
        common = common_keys(params, splits_dir, setting["dataset"])
        for values in itertools.product(*grid.values()):
            plan.append((setting["name"], setting_config(setting, common, dict(zip(grid, values)))))
    return plan


def tune_wd_plan(settings: Sequence[dict], params: dict, splits_dir: Path | str) -> Plan:
    """Baseline runs (λ = 0) over each setting's λ_WD sweep (its own `weight_decays` or tune_wd's)."""
    plan = []
    for setting in settings:
        sweep = setting.get("weight_decays", params["tune_wd"]["weight_decays"])
        plan += _runs([setting], params, splits_dir,
                      {"weight_decay": sweep, "seed": params["tune_wd"]["seeds"], "penalty": ["none"]})
    return plan


def choose_baseline(plan: Plan, metrics: Sequence[dict]) -> dict[str, dict]:
    """Per setting: the λ_WD with the best mean validation accuracy, and its mean energy and accuracy.

    A λ_WD any of whose seeds diverged is not a candidate. When every λ_WD diverged the
    best of them is recorded with `diverged: true`: its energy is no reference, so the
    setting's energy ratios are NaN (`baseline_energy`) and its curves are not scored.
    """
    by_setting: dict[str, dict[float, list[dict]]] = {}
    for (name, cfg), m in zip(plan, metrics):
        by_setting.setdefault(name, {}).setdefault(cfg.weight_decay, []).append(m)
    chosen = {}
    for name, sweep in by_setting.items():
        mean = {wd: statistics.fmean(m["val_accuracy"] for m in runs) for wd, runs in sweep.items()}
        stable = [wd for wd, runs in sweep.items() if not any(m.get("diverged") for m in runs)]
        best = max(stable or mean, key=lambda wd: (mean[wd], -wd))  # ties: the smaller λ_WD
        runs = sweep[best]
        chosen[name] = {
            "weight_decay": best,
            "energy_pj": statistics.fmean(m["energy_pj"] for m in runs),
            "val_accuracy": mean[best],
            "test_accuracy": statistics.fmean(m["test_accuracy"] for m in runs),
            "diverged": not stable,
            "sweep": {str(wd): acc for wd, acc in mean.items()},
        }
    return chosen


def diverged_baselines(baselines: dict[str, dict]) -> list[str]:
    """The settings whose tuned baseline diverged at every λ_WD (`choose_baseline`): no energy reference."""
    return [name for name, base in baselines.items() if base.get("diverged")]


def warn_skipped(baselines: dict[str, dict]) -> list[str]:
    """`diverged_baselines`, reported in one warning line when there are any."""
    skipped = diverged_baselines(baselines)
    if skipped:
        log.warning("warning: the tuned baseline of %s diverged at every λ_WD; its energy ratios are undefined, "
                    "so its trade-off curves are skipped (the tables say so in their note column)", ", ".join(skipped))
    return skipped


def baseline_energy(baseline: dict) -> float:
    """The E_SNN that energy ratios divide by: NaN when the reference (a tuned baseline, see `choose_baseline`,
    or a run's metrics) diverged."""
    return math.nan if baseline.get("diverged") else baseline["energy_pj"]


def selected(settings: Sequence[dict], section: dict) -> list[dict]:
    """The settings an experiment section runs on: those its `settings` list names, else all."""
    names = section.get("settings")
    return [s for s in settings if names is None or s["name"] in names]


def penalty_plan(settings: Sequence[dict], params: dict, splits_dir: Path | str, kind: str,
                 baselines: dict[str, dict]) -> Plan:
    """Sec. 4.3: penalty `kind` × p × λ' × seeds at each setting's tuned λ_WD (p: the setting's own `ps`
    list, else `penalty.p`)."""
    penalty = params["penalty"]
    plan = []
    for setting in settings:
        tuned = {"weight_decay": baselines[setting["name"]]["weight_decay"]}
        plan += _runs([{**setting, **tuned}], params, splits_dir,
                      {"penalty": [kind], "p": setting.get("ps", penalty["p"]), "lam_norm": penalty["lam_norms"],
                       "seed": penalty["seeds"]})
    return plan


def grid_plan(settings: Sequence[dict], params: dict, splits_dir: Path | str) -> Plan:
    """Sec. 4.2: Ω_syn (p = 1) over raw λ × λ_WD × B_BN × seeds on the `grid.settings` (all by default),
    each list with 0 added (the paper's unregularised and weight-decay-only rows, and the
    λ = λ_WD = B_BN = 0 normaliser). B_BN = 1 only with λ_WD > 0: it scales a term of λ_WD (Eq. 21), so
    at λ_WD = 0 it would train the B_BN = 0 run again."""
    grid = params["grid"]
    with_zero = {key: sorted({0, *grid[key]}) for key in ("lams", "weight_decays", "bn_decays")}
    plan = _runs(selected(settings, grid), params, splits_dir,
                 {"penalty": ["syn"], "p": [1], "lam": with_zero["lams"], "weight_decay": with_zero["weight_decays"],
                  "bn_decay": with_zero["bn_decays"], "seed": grid["seeds"]})
    return [(name, cfg) for name, cfg in plan if cfg.weight_decay or not cfg.bn_decay]


def grid_references(plan: Plan, metrics: Sequence[dict]) -> list[float]:
    """Per run of a `grid_plan`, E_SNN of the λ = λ_WD = B_BN = 0 run of its setting and seed (Sec. 4.2)."""
    reference = {(name, cfg.seed): baseline_energy(m)
                 for (name, cfg), m in zip(plan, metrics) if cfg.lam == cfg.weight_decay == cfg.bn_decay == 0}
    return [reference[name, cfg.seed] for name, cfg in plan]


Conversions = list[tuple[str, str, RunConfig]]  # (protocol, setting name, config) of each converted network


def ann2snn_plan(settings: Sequence[dict], params: dict, splits_dir: Path | str,
                 baselines: dict[str, dict]) -> Conversions:
    """Sec. 4.3.3: the QReLU ANNs trained with a synaptic-operation penalty (Ω_syn, p = 1) whose conversions
    are scored, per `ann2snn.settings` (all by default), seed, protocol and λ' (ascending):

    - `per_intensity`: one network per λ', each trained from scratch for `train.epochs`;
    - `ramp`, the paper's protocol ("a single QReLU network ... increasing the intensity of the penalty",
      after Sorbaro et al. 2020): the smallest λ' from scratch, then each next λ' trained for
      `ann2snn.ramp_epochs` from the previous one's final weights (`warm_start`, a fresh optimizer and
      cosine schedule) — one network whose snapshot at each intensity is converted.

    The two protocols share their from-scratch run at the smallest λ'. A chain's links must train in order:
    `chain_levels`.
    """
    conversion, plan = params["ann2snn"], []
    for setting in selected(settings, conversion):
        common = common_keys(params, splits_dir, setting["dataset"])
        tuned = {**setting, "weight_decay": baselines[setting["name"]]["weight_decay"], "neuron": "qrelu"}
        for seed, protocol in itertools.product(conversion["seeds"], conversion["protocol"]):
            parent = None
            for lam_norm in sorted(conversion["lam_norms"]):
                varied = {"penalty": "syn", "p": 1, "lam_norm": lam_norm, "seed": seed}
                if protocol == "ramp" and parent is not None:
                    varied |= {"epochs": conversion["ramp_epochs"], "warm_start": run_id(parent)}
                parent = setting_config(tuned, common, varied)
                plan.append((protocol, setting["name"], parent))
    return plan


def chain_levels(plan: Conversions) -> list[Plan]:
    """The distinct runs of `plan` grouped by how many warm starts lead to them: level k needs level k − 1."""
    depth: dict[str, int] = {}
    levels: list[Plan] = []
    for _, name, cfg in plan:  # a chain's links come in order, parents first
        key = run_id(cfg)
        if key not in depth:
            depth[key] = depth[cfg.warm_start] + 1 if cfg.warm_start else 0
            levels += [[] for _ in range(depth[key] + 1 - len(levels))]
            levels[depth[key]].append((name, cfg))
    return levels


def cost_model_column(name: str) -> str:
    """The points-table column of a run's energy under cost model `name`: `energy_pj` for the paper's."""
    return "energy_pj" if name == "paper" else f"energy_pj_{name}"


def cost_model_energies(cfg: RunConfig, metrics: dict, converted: bool = False) -> dict[str, float]:
    """`energy_pj_<cost model>` of a run under every registered cost model but the paper's (that one is
    `energy_pj`), from its per-layer counts (`run_energy.energy_by_cost_model`); NaN where the counts cannot
    say it: a spiking layer that drives several conv/FC layers (a residual block) has one event count for
    synapses of different prices. Nothing without per-layer counts."""
    if "energy_pj_layers" not in metrics:
        return {}
    wiring = run_wiring(cfg.to_dict(), converted)
    names = [name for name in COST_MODELS if name != "paper"]
    if any(len(drives) > 1 for drives in wiring.fanout.values()):
        return {cost_model_column(name): math.nan for name in names}
    energies = energy_by_cost_model(metrics, wiring)
    return {cost_model_column(name): energies[name]["energy_pj"] for name in names}


def point_row(setting: str, cfg: RunConfig, metrics: dict, baseline_pj: float, *,
              curve: str | None = None, T: int = 1) -> dict[str, Any]:
    """One row of the trade-off/grid tables: what was run and what it measured, its energy also under
    every cost model (`cost_model_energies`).

    The energy ratio E_SNN / E_baseline is computed here and nowhere else (NaN when the baseline
    spent no energy or is NaN, e.g. it diverged: such points are dropped from the scores and counted).
    """
    return {
        "setting": setting, "method": curve or method(cfg), "penalty": cfg.penalty,
        "p": cfg.p, "lam_norm": cfg.lam_norm, "lam": cfg.lam, "weight_decay": cfg.weight_decay,
        "bn_decay": cfg.bn_decay, "seed": cfg.seed, "T": T,
        "test_accuracy": metrics["test_accuracy"], "val_accuracy": metrics.get("val_accuracy"),
        "energy_ratio": metrics["energy_pj"] / baseline_pj if baseline_pj > 0 else math.nan,
        "energy_pj": metrics["energy_pj"],
        "rate_mean": metrics["rate_mean"], "rate_sum": metrics["rate_sum"],
        "dead_rate": metrics["dead_rate"], "diverged": bool(metrics.get("diverged", False)),
        "epoch_seconds": metrics.get("epoch_seconds"), "run_id": run_id(cfg),
        **{k: metrics[k] for k in _CONVERSION_KEYS if k in metrics},
        **cost_model_energies(cfg, metrics, converted=curve == "ann2snn"),
    }
