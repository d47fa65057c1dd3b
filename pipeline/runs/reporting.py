"""The reporting stages, one function each (score, figures): they join the experiment stages' points
tables (`artifacts/<item>/<stage>/points.csv`, one row per run, and `runs/<run id>/` records) into the
published results of the item (spec §6) — the paper's tables, the claims' verdicts, the headline metrics,
the per-series files `dvc plots` draws, the figures — and record what produced them (`environment.json`)
and the sample `python -m pipeline.runs.verify` retrains (`reference.json`).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from pipeline.accounting import accounting
from pipeline.figures import plot_layer_shares, plot_seed_spread, plot_tradeoff, plot_training_curves, results_readme
from pipeline.fileio import write_atomic
from pipeline.paper import paper_comparison, paper_comparison_markdown
from pipeline.penalties import PENALTIES
from pipeline.rundir import HISTORY, HISTORY_COLUMNS, METRICS, read_history
from pipeline.runs.layout import Layout
from pipeline.cost_models import COST_MODELS
from pipeline.runs.plans import cost_model_column, diverged_baselines, warn_skipped
from pipeline.runs.quotes import refresh_quotes
from pipeline.runs.verify import reference_sample
from pipeline.scoring import curve_key, score_curves, seed_summary, split_curves
from pipeline.tables import comparison_best, grid_table, method_comparison, time_table, write_table
from pipeline.claims_readme import claims_section
from pipeline.comparisons import read_timing
from pipeline.verdicts import MIN_SEEDS, claim_table

__all__ = ["POINT_COLUMNS", "SKIPPED_NOTE", "curve_histories", "diverged_baselines", "environments", "figures",
           "headline", "note_skipped", "score", "tradeoff_points", "warn_skipped", "write_curve_series",
           "write_plot_series"]

EXPERIMENTS = ("tune_wd", "train", "grid", "ann2snn")  # the stages whose run records the results draw on

log = logging.getLogger(__name__)

POINT_COLUMNS = ["setting", "method", "penalty", "p", "lam_norm", "seed", "T", "test_accuracy", "energy_ratio",
                 "energy_pj", "rate_mean", "rate_sum", "dead_rate", "diverged"]
SKIPPED_NOTE = "baseline diverged at every λ_WD: energy ratios undefined, curves not scored"


def note_skipped(table: pd.DataFrame, skipped: list[str]) -> pd.DataFrame:
    """`table` with one row per skipped setting and a `note` column saying why it has no curves."""
    if not skipped:
        return table
    notes = pd.DataFrame({"setting": skipped, "note": SKIPPED_NOTE})
    noted = pd.concat([table.assign(note=""), notes], ignore_index=True)
    text = [c for c in noted.columns if not pd.api.types.is_numeric_dtype(noted[c])]
    return noted.fillna({c: "—" for c in text})


def tradeoff_points(layout: Layout, baselines: dict[str, dict]) -> pd.DataFrame:
    """Every trade-off run: the tuned baselines, the penalties' curves and the ann2snn rows.

    A setting whose baseline diverged (`diverged_baselines`) keeps its rows, with NaN energy
    ratios and a `note` column saying why.
    """
    tune = pd.read_csv(layout.experiment("tune_wd") / "points.csv")
    tuned = tune[[baselines[s]["weight_decay"] == wd for s, wd in zip(tune["setting"], tune["weight_decay"])]]
    parts = [tuned, *(pd.read_csv(layout.experiment(stage) / "points.csv") for stage in ("train", "ann2snn"))]
    points = pd.concat(parts, ignore_index=True)
    points = points[POINT_COLUMNS + [c for c in points.columns if c not in POINT_COLUMNS]]
    skipped = points["setting"].isin(diverged_baselines(baselines))
    if skipped.any():
        points = points.assign(note=skipped.map({True: SKIPPED_NOTE, False: ""}))
        points.loc[skipped, "energy_ratio"] = math.nan
    return points


def headline(scores: pd.DataFrame, baselines: dict[str, dict], summary: pd.DataFrame | None = None) -> dict:
    """The DVC metrics, short enough for `dvc exp show`: per setting, the baseline and each curve's AUCs.

    Keys: `baseline.acc` (test accuracy, %), `baseline.energy_uj` (E_SNN, µJ per image) and
    `<curve>.auc<P>` (%, all seeds pooled into one curve), the curve named by `scoring.curve_key`
    without its p when the penalty has one p only (`syn.auc70`; `syn_p2.auc70` beside `syn_p1.auc70`
    when both are trained). With a `summary` (`scoring.seed_summary`) of more than one seed, also
    `<curve>.auc<P>_mean` and `<curve>.auc<P>_sd` over the seeds' own curves.
    With one setting these sit at the top; with several, under each setting's name.
    The full score table is `tables/tradeoff_scores.csv`.
    """
    cutoffs = [c.removeprefix("auc_") for c in scores.columns if c.startswith("auc_")]
    ps_per_method = scores.groupby("method")["p"].nunique()
    seeds = summary is not None and (summary["n_seeds"] > 1).any()
    spread = summary.set_index(["setting", "label"]) if seeds else None
    metrics: dict[str, dict] = {}
    for setting, base in baselines.items():
        metrics[setting] = {"baseline": {"acc": round(100 * base["test_accuracy"], 2),
                                         "energy_uj": round(base["energy_pj"] / 1e6, 4)}}
    for _, row in scores.iterrows():
        key = curve_key(row["method"], row["p"], row["T"], with_p=ps_per_method[row["method"]] > 1)
        curve = {f"auc{c}": _rounded(row[f"auc_{c}"]) for c in cutoffs}
        if seeds:
            own = spread.loc[(row["setting"], row["label"])]
            curve |= {f"auc{c}_{stat}": _rounded(own[f"auc_{c}_{stat}"]) for c in cutoffs for stat in ("mean", "sd")}
        metrics[row["setting"]][key] = curve
    return next(iter(metrics.values())) if len(metrics) == 1 else metrics


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 2)


def write_plot_series(points: pd.DataFrame, out_dir: Path) -> None:
    """One CSV per setting for `dvc plots` (one plot each): its baseline and every curve's valid runs.

    Column `series` names the curve ("Ω_syn p=1", "ann2snn T=5", "baseline"; the
    plot's colour), rows are in the paper's method order, then λ' (the order a
    curve's points are joined in), then seed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["setting", "series", "lam_norm", "seed", "energy_ratio", "test_accuracy"]
    valid = ~points["diverged"].astype(bool)
    parts = [points[(points["method"] == "baseline") & valid].assign(series="baseline")]
    for curve in split_curves(points):
        rows = points[(points["setting"] == curve.setting) & (points["method"] == curve.method)
                      & (points["T"] == curve.T) & valid]
        if curve.method != "ann2snn":
            rows = rows[rows["p"] == curve.p]
        parts.append(rows.sort_values(["lam_norm", "seed"]).assign(series=curve.label))
    series = pd.concat(parts, ignore_index=True)[columns]
    for setting, rows in series.groupby("setting", sort=True):
        write_atomic(out_dir / f"{setting}.csv", rows.to_csv(index=False))


def curve_histories(layout: Layout, baselines: dict[str, dict], lam_norms: list[float]
                    ) -> dict[str, pd.DataFrame]:
    """Per-epoch histories of the first setting's tuned baseline and Ω_syn runs at `lam_norms` (first seed, p).

    A run without a history (it diverged in epoch 1) gets an empty history, which the figure
    shows as a legend entry only; all such runs are named in one warning line.
    """
    setting = next(iter(baselines))
    absent = []

    def first_seed(stage: str) -> pd.DataFrame:
        points = pd.read_csv(layout.experiment(stage) / "points.csv")
        points = points[points["setting"] == setting]
        return points[points["seed"] == points["seed"].min()]

    def history(stage: str, row: pd.Series, label: str) -> pd.DataFrame:
        path = layout.experiment(stage) / "runs" / row["run_id"] / HISTORY
        if path.is_file():
            return pd.DataFrame(read_history(path), columns=HISTORY_COLUMNS)
        absent.append(f"{label} ({'diverged in epoch 1' if row['diverged'] else f'no {path}'})")
        return pd.DataFrame(columns=HISTORY_COLUMNS)

    base = first_seed("tune_wd")
    base = base[base["weight_decay"] == baselines[setting]["weight_decay"]]
    histories = {"baseline": history("tune_wd", base.iloc[0], "baseline")}
    syn = first_seed("train")
    syn = syn[(syn["method"] == "syn") & (syn["p"] == syn["p"].min()) & syn["lam_norm"].isin(lam_norms)]
    for _, row in syn.sort_values("lam_norm").iterrows():
        label = f"{PENALTIES['syn'].symbol} λ'={row['lam_norm']:g}"
        histories[label] = history("train", row, label)
    if absent:
        log.warning("warning: no training curve for %s; shown in the legend only", ", ".join(absent))
    return histories


def write_curve_series(histories: dict[str, pd.DataFrame], out_dir: Path, setting: str) -> None:
    """`histories` (of `curve_histories`) as one CSV for `dvc plots`, `out_dir/<setting>.csv`, one line per run.

    Columns: setting, run (the history's label, the plot's colour), then the history's own columns.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [history.assign(setting=setting, run=label) for label, history in histories.items()
            if not history.empty]  # a run that finished no epoch: nothing to draw
    if rows:
        table = pd.concat(rows, ignore_index=True)
        table = table[["setting", "run", *(c for c in table.columns if c not in ("setting", "run"))]]
        write_atomic(out_dir / f"{setting}.csv", table.to_csv(index=False))


def carried_cost_models(points: pd.DataFrame) -> list[str]:
    """The cost models whose energies `points` carry (`plans.cost_model_energies`); the paper's always."""
    return [name for name in COST_MODELS if cost_model_column(name) in points.columns]


def under_cost_model(points: pd.DataFrame, name: str) -> pd.DataFrame:
    """`points` with `energy_ratio` re-measured under cost model `name`: each run's energy under it
    (`plans.cost_model_column`) over the mean of its setting's baseline runs'."""
    column = cost_model_column(name)
    reference = points[points["method"] == "baseline"].groupby("setting")[column].mean()
    return points.assign(energy_ratio=points[column] / points["setting"].map(reference))


def cost_model_scores(points: pd.DataFrame, cutoffs: list[float]) -> pd.DataFrame:
    """Every curve's AUC(P) with energy measured under each cost model the points carry (docs/energy-models.md):
    one row per curve, one column per cost model and cutoff. Does Ω_syn's lead survive when memory, neuron
    updates and a device's prices are counted, and does a penalty matched to a cost model lead under it?"""
    names = carried_cost_models(points)
    keys = ["setting", "method", "p", "T", "neuron", "protocol", "label"]
    scored = [score_curves(under_cost_model(points, name), cutoffs).set_index(keys)[[f"auc_{c:g}" for c in cutoffs]]
              .rename(columns=lambda column: f"{name} AUC({column.removeprefix('auc_')})") for name in names]
    return pd.concat(scored, axis=1).reset_index().drop(columns=["method", "p", "T", "neuron", "protocol"])


def plot_cost_models(points: pd.DataFrame, path_stem: Path, cutoff: float) -> list[Path]:
    """The first setting's trade-off curves once per cost model: a panel each, energy under that model."""
    setting = points["setting"].iloc[0]
    mine = points[points["setting"] == setting]
    panels = [under_cost_model(mine, name).assign(setting=f"{setting}: energy under {name}")
              for name in carried_cost_models(mine)]
    return plot_tradeoff(pd.concat(panels, ignore_index=True), path_stem, cutoff=cutoff)


def environments(layout: Layout) -> dict:
    """What produced the item's runs: each distinct environment record (`pipeline.numerics.environment`) of
    the runs its experiment stages hold, with how many runs it produced (one record when all ran alike)."""
    counts: dict[str, int] = {}
    for stage in EXPERIMENTS:
        for path in sorted((layout.experiment(stage) / "runs").glob(f"*/{METRICS}")):
            key = json.dumps(json.loads(path.read_text()).get("environment"), sort_keys=True)
            counts[key] = counts.get(key, 0) + 1
    return {"runs": sum(counts.values()),
            "environments": [{**(json.loads(key) or {}), "runs": n} for key, n in counts.items()]}


def score(params: dict, layout: Layout) -> None:
    """Trade-off points, their scores (pooled over seeds, and per seed with mean ± sd), the Sec. 4.2 grid
    and training-time tables, ours beside the paper's Table 4 where the item has the paper's setting, with
    ≥ 3 seeds the claims' verdicts, the headline metrics, the environment record and the verify sample."""
    cutoffs = params["score"]["cutoffs"]
    baselines = layout.load_baselines()
    skipped = warn_skipped(baselines)  # settings whose baseline diverged: no energy ratios, no curves
    points = tradeoff_points(layout, baselines)
    tables = layout.tables
    write_table(points, tables / "tradeoff_points", floatfmt=".4g")
    scored = points[~points["setting"].isin(skipped)]
    scores = score_curves(scored, cutoffs)
    write_table(note_skipped(scores, skipped), tables / "tradeoff_scores", floatfmt=".3f")
    per_seed = score_curves(scored, cutoffs, by_seed=True)
    write_table(per_seed, tables / "seed_scores", floatfmt=".3f")
    summary = seed_summary(per_seed)
    write_table(summary, tables / "seed_summary", floatfmt=".3f")
    comparison = method_comparison(scores, summary)
    write_table(note_skipped(comparison, skipped), tables / "method_comparison", best=comparison_best(comparison),
                floatfmt=".3f")
    grid = pd.read_csv(layout.experiment("grid") / "points.csv")
    write_table(grid_table(grid), tables / "grid", floatfmt=".3g")
    write_table(time_table(points[points["method"] != "ann2snn"]), tables / "training_time", floatfmt=".3f")
    paper = paper_comparison(scores, params["settings"])
    if len(paper):  # the item has the paper's CNN7 / Fashion-MNIST / Adam / s3nn setting: ours beside Table 4
        write_atomic(tables / "paper_comparison.csv", paper.to_csv(index=False))
        write_atomic(tables / "paper_comparison.md", paper_comparison_markdown(paper, baselines))
    if points["seed"].nunique() >= MIN_SEEDS:
        claims = params["claims"]
        margins = {"test_accuracy": claims["margin_accuracy"], "energy_ratio": claims["margin_energy"],
                   "time_ratio": claims["margin_time"]}
        table = claim_table(per_seed, points, grid, params["settings"], timing=read_timing(claims["timing"]),
                            alpha=claims["alpha"], margins=margins, power=claims["power"])
        write_table(table, tables / "claims", floatfmt=".3g")
        write_atomic(tables / "claims_summary.md", claims_section(table, claims["alpha"]))
    if len(carried_cost_models(scored)) > 1:
        write_table(cost_model_scores(scored, cutoffs), tables / "cost_models", floatfmt=".2f")
    write_plot_series(scored, layout.results / "plots" / "tradeoff")
    write_atomic(layout.headline, json.dumps(headline(scores, baselines, summary), indent=2) + "\n")
    write_atomic(layout.environment, json.dumps(environments(layout), indent=2) + "\n")
    write_atomic(layout.reference, json.dumps(reference_sample(layout, points, params), indent=1) + "\n")


def figures(params: dict, layout: Layout) -> None:
    """Layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5) with their seed spread, training curves,
    the results folder's README; then the quotes of README.md and docs/ (`pipeline.runs.quotes`)."""
    drawn, out = params["figures"], layout.results / "figures"
    plot_layer_shares({m: accounting(m)["layers"] for m in drawn["models"]}, out / "layer_shares")
    baselines = layout.load_baselines()
    setting = next(iter(baselines))
    points = pd.read_csv(layout.tables / "tradeoff_points.csv")
    points = points[~points["setting"].isin(warn_skipped(baselines))]  # diverged baseline: no energy ratios
    plot_tradeoff(points, out / "tradeoff", cutoff=drawn["cutoff"])
    if len(carried_cost_models(points)) > 1:
        plot_cost_models(points, out / "cost_models", drawn["cutoff"])
    if points["seed"].nunique() > 1:
        plot_seed_spread(points, out / "seed_spread")
    histories = curve_histories(layout, baselines, drawn["curve_lam_norms"])
    plot_training_curves(histories, out / "training_curves")
    write_curve_series(histories, layout.results / "plots" / "curves", setting=setting)
    readme = results_readme(pd.read_csv(layout.tables / "method_comparison.csv"),
                            (layout.tables / "method_comparison.md").read_text(encoding="utf-8"), points,
                            drawn["cutoff"], curve_setting=setting, curve_lam_norms=drawn["curve_lam_norms"],
                            profile=params["profile"], folder=layout.item,
                            paper=(layout.tables / "paper_comparison.md").is_file())
    write_atomic(layout.results / "README.md", readme)
    refresh_quotes()  # README.md and docs/ quote the results just written
