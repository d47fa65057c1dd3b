"""The comparisons behind the paper's claims, read from a profile's results: what is compared, on which unit
of replication, against which rule (the rule itself is `pipeline.verdicts`).

Every comparison is a difference `a − b`, oriented so that positive is what the paper claims, measured on
the same setting and seed (and grid row or λ'), then reduced to its unit of replication (`by_unit`): a
claim about one setting is tested on its seeds (each seed's differences averaged over grid rows or λ'), a
claim about several settings on the settings' means. The training-time claim is tested on the interleaved
rounds of a controlled measurement (`bench/penalty_overhead.py --out`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from pipeline.config import RunConfig
from pipeline.penalties import PENALTIES, label
from pipeline.scoring import conversion_keys

__all__ = ["ARCHITECTURES", "Comparison", "Summary", "Untested", "by_unit", "comparisons", "read_timing"]

#: The paper's architectures beside CNN7 (Tables 8–17); a profile without a setting of one gets a note row.
ARCHITECTURES = ("vgg11", "resnet18")
_SYN, _TOTAL, _BALANCE = (PENALTIES[k].symbol for k in ("syn", "total", "balance"))
_METRIC_NAMES = {"auc": "AUC", "spearman": "Spearman", "mi": "MI"}
_NO_PAIRS = pd.DataFrame({"setting": pd.Series(dtype=object), "seed": pd.Series(dtype=int),
                          "difference": pd.Series(dtype=float)})


@dataclass(frozen=True, eq=False)
class Comparison:
    """One tested row: the differences, one per `unit`; `margin` set for a no-effect claim (`band` as in
    `inference.margin_test`), None for a directional one; `post_hoc` when the row was written after its
    data had been read."""

    claim: str
    comparison: str
    metric: str
    differences: np.ndarray
    unit: str
    margin: float | None = None
    band: str = "equivalence"
    post_hoc: bool = False


@dataclass(frozen=True, eq=False)
class Summary:
    """A row judged from other rows' verdicts: with `every`, holds when every member holds and does not hold
    when one does not (a claim "for each …"); else the members' common verdict (all cutoffs agree)."""

    claim: str
    comparison: str
    metric: str
    members: tuple = field(repr=False)
    every: bool = False
    post_hoc: bool = False


@dataclass(frozen=True, eq=False)
class Untested:
    """A claim this profile's data cannot test, and why."""

    claim: str
    comparison: str
    note: str


Row = Comparison | Summary | Untested


def by_unit(differences: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Differences (columns setting, seed, difference; other keys in further rows) reduced to the unit of
    replication: with one setting, one mean per seed ("seeds"); with several, one mean per setting of its
    seeds' means ("setting means")."""
    d = differences.dropna(subset=["difference"])
    per_seed = d.groupby(["setting", "seed"], sort=True)["difference"].mean()
    if per_seed.index.get_level_values("setting").nunique() <= 1:
        return per_seed.to_numpy(float), "seeds"
    return per_seed.groupby(level="setting").mean().to_numpy(float), "setting means"


def _pick(frame: pd.DataFrame, select: Mapping, column: str) -> pd.Series:
    """`column` of the rows matching `select` (column: value), indexed by setting and seed."""
    rows = frame
    for key, value in select.items():
        rows = rows[rows[key] == value]
    return rows.set_index(["setting", "seed"])[column]


def _paired(frame: pd.DataFrame, column: str, a: Mapping, b: Mapping) -> pd.DataFrame:
    """`column` of curve `a` minus that of curve `b`, paired by setting and seed."""
    joined = pd.concat([_pick(frame, a, column).rename("a"), _pick(frame, b, column).rename("b")], axis=1,
                       join="inner")
    return (joined["a"] - joined["b"]).rename("difference").reset_index()


def _best_other(per_seed: pd.DataFrame, p: float) -> pd.DataFrame:
    """Per setting and seed, the largest score (of each metric column) of the penalties other than Ω_syn at
    `p`, as the rows of a method `other`."""
    others = per_seed[per_seed["method"].isin([k for k in PENALTIES if k != "syn"]) & (per_seed["p"] == p)]
    scores = [c for c in per_seed.columns if re.fullmatch(rf"({'|'.join(_METRIC_NAMES)})_[\d.]+", c)]
    return others.groupby(["setting", "seed"], as_index=False)[scores].max().assign(method="other", p=p)


def _cutoff_rows(claim: str, comparison: str, per_seed: pd.DataFrame, metric: str, cutoffs: Sequence[str],
                 a: Mapping, b: Mapping, post_hoc: bool = False) -> list[Row]:
    """One row per cutoff of `metric` (auc, spearman, mi) for `a − b`, then their common verdict."""
    name = _METRIC_NAMES[metric]
    rows = [Comparison(claim, comparison, f"{name}({c})", *by_unit(_paired(per_seed, f"{metric}_{c}", a, b)),
                       post_hoc=post_hoc) for c in cutoffs]
    return [*rows, Summary(claim, comparison, f"{name}(all cutoffs)", tuple(rows), post_hoc=post_hoc)]


def _setting_claim(setting: Mapping) -> str:
    """The claim a setting's "Ω_syn leads" row tests, named by what distinguishes it."""
    model = setting.get("model", RunConfig.model)
    optimizer, surrogate = setting.get("optimizer", RunConfig.optimizer), setting.get("surrogate", RunConfig.surrogate)
    if model != RunConfig.model:
        return f"{_SYN} leads on {model} ({optimizer}, {surrogate})"
    if optimizer == "adam":
        return f"{_SYN} leads with the {surrogate} surrogate (Adam)"
    return f"{_SYN} leads with optimiser {optimizer}"


def _score_rows(per_seed: pd.DataFrame, settings: Sequence[Mapping]) -> list[Row]:
    """The claims on per-seed trade-off scores: the penalties' order, p, Ω_syn's lead per setting, per
    surrogate, per architecture and on the other metrics, and direct training against conversion."""
    cutoffs = [c.removeprefix("auc_") for c in per_seed.columns if c.startswith("auc_")]
    penalty = per_seed["method"].isin(PENALTIES)
    ps = sorted(per_seed.loc[penalty, "p"].unique())
    rows: list[Row] = []
    for p in ps:
        ordering = f"Ω ordering at p = {p:g}: {_SYN} > {_TOTAL} > {_BALANCE}"
        for high, low in (("syn", "total"), ("total", "balance")):
            rows += _cutoff_rows(ordering, f"AUC {PENALTIES[high].symbol} − {PENALTIES[low].symbol}", per_seed, "auc",
                                 cutoffs, {"method": high, "p": p}, {"method": low, "p": p})
    for key in PENALTIES if len(ps) > 1 else ():
        rows += _cutoff_rows(f"p = {ps[0]:g} beats p = {ps[1]:g}",
                             f"AUC {PENALTIES[key].symbol} p={ps[0]:g} − p={ps[1]:g}", per_seed, "auc", cutoffs,
                             {"method": key, "p": ps[0]}, {"method": key, "p": ps[1]})
    with_best = pd.concat([per_seed, _best_other(per_seed, ps[0])], ignore_index=True)
    syn, other = {"method": "syn", "p": ps[0]}, {"method": "other", "p": ps[0]}
    leads: dict[tuple, list[Summary]] = {}
    for setting in settings:
        name = setting["name"]
        own = _cutoff_rows(_setting_claim(setting), f"AUC {_SYN} − best other Ω, p = {ps[0]:g}, {name}", with_best,
                           "auc", cutoffs, {**syn, "setting": name}, {**other, "setting": name})
        leads.setdefault((setting.get("model", RunConfig.model), setting.get("optimizer", RunConfig.optimizer)),
                         []).append(own[-1])
        rows += own
    for (model, optimizer), per_surrogate in leads.items():
        if len(per_surrogate) > 1:
            names = [s["name"] for s in settings if (s.get("model", RunConfig.model),
                                                     s.get("optimizer", RunConfig.optimizer)) == (model, optimizer)]
            claim = f"{_SYN} leads whatever the surrogate ({model}, {optimizer})"
            rows.append(Summary(claim, f"every surrogate's AUC row: {', '.join(names)}", "AUC(all cutoffs)",
                                tuple(per_surrogate), every=True, post_hoc=True))
            rows += _cutoff_rows(claim + ", on average over surrogates",
                                 f"AUC {_SYN} − best other Ω, p = {ps[0]:g}, the {len(names)} settings' means",
                                 with_best[with_best["setting"].isin(names)],
                                 "auc", cutoffs, syn, other, post_hoc=True)
    models = {s.get("model", RunConfig.model) for s in settings}
    rows += [Untested(f"{_SYN} leads on {model}", f"AUC {_SYN} − best other Ω on {model}",
                      f"no {model} setting in this profile") for model in ARCHITECTURES if model not in models]
    for metric in ("spearman", "mi"):
        rows += _cutoff_rows(f"{_SYN} also leads on {_METRIC_NAMES[metric]}(P) (Table 4)",
                             f"{_METRIC_NAMES[metric]} {_SYN} − best other Ω, p = {ps[0]:g}", with_best, metric,
                             cutoffs, syn, other, post_hoc=True)
    rows += _conversion_rows(per_seed, cutoffs, ps[0])
    return rows


def _conversion_rows(per_seed: pd.DataFrame, cutoffs: Sequence[str], p: float) -> list[Row]:
    """Direct training (Ω_syn at `p`) against each conversion curve, per (neuron, protocol, T)."""
    conversion = conversion_keys(per_seed)
    curves = conversion[conversion["method"] == "ann2snn"][["neuron", "protocol", "T"]].drop_duplicates()
    if curves.empty:
        return [Untested("direct training beats conversion", f"AUC {_SYN} − ann2snn", "no conversion baseline in "
                         "this profile")]
    rows: list[Row] = []
    for neuron, protocol, T in curves.sort_values(["neuron", "protocol", "T"]).itertuples(index=False):
        rows += _cutoff_rows(f"direct training beats conversion ({neuron}, {protocol}, T = {T})",
                             f"AUC {_SYN} p={p:g} − ann2snn {neuron} {protocol} T={T}", conversion, "auc", cutoffs,
                             {"method": "syn", "p": p},
                             {"method": "ann2snn", "neuron": neuron, "protocol": protocol, "T": T})
    return rows


def _lambda_rows(points: pd.DataFrame) -> list[Row]:
    """λ' controls the trade-off: per penalty curve and seed, −Spearman ρ of λ' with energy and accuracy."""
    runs = points[points["method"].isin(PENALTIES) & ~points["diverged"].astype(bool)]
    rho = []
    for (setting, _, _, seed), curve in runs.groupby(["setting", "method", "p", "seed"]):
        for column in ("energy_ratio", "test_accuracy"):
            if curve["lam_norm"].nunique() > 1 and curve[column].nunique() > 1:
                rho.append({"setting": setting, "seed": seed, "column": column,
                            "difference": -spearmanr(curve["lam_norm"], curve[column]).statistic})
    rho = pd.DataFrame(rho, columns=["setting", "seed", "column", "difference"])
    claim = "λ' controls the trade-off"
    return [Comparison(claim, f"−Spearman ρ(λ', {column.replace('_', ' ')}) per curve", "ρ",
                       *by_unit(rho[rho["column"] == column])) for column in ("energy_ratio", "test_accuracy")]


def _grid_pairs(grid: pd.DataFrame, vary: str, select: pd.Series, column: str, high_minus_low: bool) -> pd.DataFrame:
    """`column` at the largest minus at the smallest value of grid key `vary` (or the reverse), paired by the
    other keys and the seed, over the grid rows `select`."""
    keys = [k for k in ("setting", "lam", "weight_decay", "bn_decay", "seed") if k != vary]
    low, high = grid[vary].min(), grid[vary].max()
    table = grid[select].pivot_table(index=keys, columns=vary, values=column)
    if low == high or low not in table.columns or high not in table.columns:
        return _NO_PAIRS
    difference = (table[high] - table[low]) if high_minus_low else (table[low] - table[high])
    return difference.rename("difference").reset_index()


def _syn_against_decay(grid: pd.DataFrame) -> pd.DataFrame:
    """Energy ratio with weight decay alone (λ = 0, the largest λ_WD) minus with Ω_syn alone (λ > 0, λ_WD = 0;
    the mean over λ), per setting and seed, B_BN = 0."""
    plain = grid[grid["bn_decay"] == 0]
    if plain.empty or plain["weight_decay"].max() == 0:
        return _NO_PAIRS
    alone = plain[(plain["lam"] == 0) & (plain["weight_decay"] == plain["weight_decay"].max())]
    syn = plain[(plain["lam"] > 0) & (plain["weight_decay"] == 0)].groupby(["setting", "seed"])["energy_ratio"].mean()
    joined = pd.concat([alone.set_index(["setting", "seed"])["energy_ratio"].rename("a"), syn.rename("b")], axis=1,
                       join="inner")
    return (joined["a"] - joined["b"]).rename("difference").reset_index()


def _grid_rows(grid: pd.DataFrame | None, margins: Mapping[str, float]) -> list[Row]:
    """Sec. 4.2: weight decay with and without Ω_syn, and B_BN (where λ_WD > 0, the only rows it touches)."""
    wd, bn = "weight decay with Ω_syn (λ > 0, B_BN = 0)", "B_BN has no notable effect (λ_WD > 0)"
    alone = "weight decay alone (λ = 0) kills neurons and saves energy, less than Ω_syn"
    if grid is None or grid.empty:
        return [Untested(claim, "Sec. 4.2 grid", "no grid in this profile") for claim in (wd, bn, alone)]
    grid = grid[~grid["diverged"].astype(bool)]
    penalised, decayed, no_bn = grid["lam"] > 0, grid["weight_decay"] > 0, grid["bn_decay"] == 0
    acc, energy = margins["test_accuracy"], margins["energy_ratio"]

    def row(claim: str, comparison: str, metric: str, pairs: pd.DataFrame, **kw) -> Comparison:
        return Comparison(claim, comparison, metric, *by_unit(pairs), **kw)

    return [
        row(wd, "energy ratio at λ_WD = 0 − at λ_WD > 0", "energy_ratio",
            _grid_pairs(grid, "weight_decay", penalised & no_bn, "energy_ratio", False)),
        row(wd, "test accuracy at λ_WD > 0 − at λ_WD = 0 (no notable loss)", "test_accuracy",
            _grid_pairs(grid, "weight_decay", penalised & no_bn, "test_accuracy", True), margin=acc,
            band="non-inferiority"),
        row(bn, "test accuracy at B_BN = 1 − at B_BN = 0", "test_accuracy",
            _grid_pairs(grid, "bn_decay", decayed, "test_accuracy", True), margin=acc),
        row(bn, "energy ratio at B_BN = 1 − at B_BN = 0", "energy_ratio",
            _grid_pairs(grid, "bn_decay", decayed, "energy_ratio", True), margin=energy),
        row(alone, "dead rate at λ_WD > 0 − at λ_WD = 0 (λ = 0)", "dead_rate",
            _grid_pairs(grid, "weight_decay", ~penalised & no_bn, "dead_rate", True), post_hoc=True),
        row(alone, "energy ratio at λ_WD = 0 − at λ_WD > 0 (λ = 0)", "energy_ratio",
            _grid_pairs(grid, "weight_decay", ~penalised & no_bn, "energy_ratio", False), post_hoc=True),
        row(alone, "energy ratio with λ_WD > 0 alone − with Ω_syn alone (λ > 0)", "energy_ratio",
            _syn_against_decay(grid), post_hoc=True),
    ]


def _optimizer_pairs(settings: Sequence[Mapping]) -> list[tuple[str, str]]:
    """(Adam setting, momentum SGD setting) with the same model, dataset, width and surrogate."""
    def twin(s: Mapping) -> tuple:
        return tuple(s.get(k, getattr(RunConfig, k)) for k in ("model", "dataset", "width", "surrogate"))

    adam = {twin(s): s["name"] for s in settings if s.get("optimizer", RunConfig.optimizer) == "adam"}
    return [(adam[twin(s)], s["name"]) for s in settings
            if s.get("optimizer", RunConfig.optimizer) == "msgd" and twin(s) in adam]


def _sensitivity(runs: pd.DataFrame) -> pd.Series:
    """Per setting and seed, the test accuracy lost per doubling of λ' (−OLS slope on log2 λ')."""
    def slope(curve: pd.DataFrame) -> float:
        if curve["lam_norm"].nunique() < 2:
            return np.nan
        return -np.polyfit(np.log2(curve["lam_norm"]), curve["test_accuracy"], 1)[0]

    return runs.groupby(["setting", "seed"])[["lam_norm", "test_accuracy"]].apply(slope)


def _optimizer_rows(points: pd.DataFrame, settings: Sequence[Mapping]) -> list[Row]:
    """Adam kills more neurons than momentum SGD (Tables 2 vs 3); momentum SGD is more sensitive to λ'
    (App. B.3): Ω_syn at the first p, paired by seed (and λ') between twin settings."""
    dead, sensitive = "Adam kills more neurons than momentum SGD", "momentum SGD is more sensitive to λ' than Adam"
    runs = points[(points["method"] == "syn") & ~points["diverged"].astype(bool)]
    runs = runs[runs["p"] == runs["p"].min()]
    pairs = [(adam, msgd) for adam, msgd in _optimizer_pairs(settings)
             if {adam, msgd} <= set(runs["setting"])]
    if not pairs:
        note = ("no Adam and momentum SGD settings with the same model, dataset, width and surrogate, both with "
                "Ω_syn runs")
        return [Untested(dead, "dead rate, Adam − momentum SGD", note),
                Untested(sensitive, "accuracy lost per doubling of λ', momentum SGD − Adam", note)]
    slopes = _sensitivity(runs)
    by_lam = runs.set_index(["setting", "lam_norm", "seed"])["dead_rate"]
    dead_pairs, slope_pairs = [], []
    for adam, msgd in pairs:
        joined = pd.concat([by_lam.loc[adam].rename("a"), by_lam.loc[msgd].rename("b")], axis=1, join="inner")
        dead_pairs.append((joined["a"] - joined["b"]).rename("difference").reset_index().assign(setting=adam))
        difference = slopes.loc[msgd] - slopes.loc[adam]
        slope_pairs.append(difference.rename("difference").reset_index().assign(setting=adam))
    p = runs["p"].min()
    return [Comparison(dead, f"dead rate, Adam − momentum SGD, {label('syn', p)} at each λ'", "dead_rate",
                       *by_unit(pd.concat(dead_pairs)), post_hoc=True),
            Comparison(sensitive, f"accuracy lost per doubling of λ' ({label('syn', p)}), momentum SGD − Adam",
                       "test_accuracy", *by_unit(pd.concat(slope_pairs)), post_hoc=True)]


def read_timing(path: Path | str) -> pd.DataFrame | None:
    """The step-time ratios `bench/penalty_overhead.py --out` wrote (columns penalty, p, ratio: one row per
    penalty and interleaved round), or None when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    measured = json.loads(path.read_text(encoding="utf-8"))
    return pd.DataFrame([{"penalty": entry["penalty"], "p": float(entry["p"]), "ratio": ratio}
                         for entry in measured["penalties"] for ratio in entry["ratios"]],
                        columns=["penalty", "p", "ratio"])


def _timing_rows(timing: pd.DataFrame | None, margin: float) -> list[Row]:
    """The penalty barely changes training time (Table 7): each penalty's step time ÷ the step without, per
    interleaved round, equivalent to 1 within `margin`."""
    claim = "the penalty barely changes training time (Table 7)"
    if timing is None or timing.empty:
        return [Untested(claim, "step time with Ω ÷ without − 1", "no controlled timing (bench/penalty_overhead.py "
                         "--out) given")]
    return [Comparison(claim, f"step time with {label(kind, p)} ÷ without − 1", "time_ratio",
                       rounds["ratio"].to_numpy(float) - 1, "interleaved rounds", margin=margin)
            for (kind, p), rounds in timing.groupby(["penalty", "p"], sort=False)]


def comparisons(per_seed: pd.DataFrame, points: pd.DataFrame, grid: pd.DataFrame | None, settings: Sequence[Mapping],
                timing: pd.DataFrame | None, margins: Mapping[str, float]) -> list[Row]:
    """Every row of the claims table in its order, from the inputs `verdicts.claim_table` documents;
    `margins` maps test_accuracy, energy_ratio and time_ratio to the size of a notable effect."""
    return [*_score_rows(per_seed, settings), *_lambda_rows(points), *_grid_rows(grid, margins),
            *_optimizer_rows(points, settings), *_timing_rows(timing, margins["time_ratio"])]
