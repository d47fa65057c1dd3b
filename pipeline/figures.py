"""Figures (spec §6): per-layer shares (paper Figs. 1–2), trade-off curves (Figs. 3, 5), training curves.

Each figure is written as `path_stem.png` and `path_stem.pdf`. Figures are
`matplotlib.figure.Figure` objects rendered by the Agg (PNG) and PDF canvases,
never registered with pyplot, so no global backend is switched and nothing
stays open. Series differ by marker and line style as well as colour, so a
greyscale print stays readable. An empty input gives a figure saying "no data".
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.fileio import write_atomic
from pipeline.penalties import PENALTIES
from pipeline.scoring import auc, envelope, seed_statistics, split_curves, valid_runs

__all__ = ["layer_shares", "plot_layer_shares", "plot_seed_spread", "plot_tradeoff", "plot_training_curves",
           "results_readme"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", "h")  # "*" is the baseline's
_LINESTYLES = ("-", "--", ":", "-.")
_SHARES = {"E_SNN": "E_SNN", **{key: penalty.symbol for key, penalty in PENALTIES.items()}}
_BAR_LOOKS = (("0.1", ""), ("0.55", "//"), ("1.0", ".."), ("0.8", "xx"))  # (grey, hatch) per quantity
_HISTORY_PANELS = (("loss", "training loss", 1.0), ("val_accuracy", "validation accuracy [%]", 100.0),
                   ("rate_mean", "mean firing rate [%]", 100.0))

_X_MAX = 110.0  # % of the baseline energy shown on trade-off plots


def _style(index: int) -> dict:
    """Marker, line style and colour of the index-th series (9 × 4 distinct marker/line pairs)."""
    return {
        "marker": _MARKERS[index % len(_MARKERS)],
        "linestyle": _LINESTYLES[index % len(_LINESTYLES)],
        "color": f"C{index % 10}",
    }


def _save(fig: Figure, path_stem: Path) -> list[Path]:
    path_stem = Path(path_stem)
    paths = [path_stem.parent / f"{path_stem.name}.{ext}" for ext in ("png", "pdf")]
    for path, options in zip(paths, ({"dpi": 150}, {"metadata": {"CreationDate": None}})):  # PDF: no timestamp
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix[1:], **options)
        write_atomic(path, buf.getvalue())
    return paths


def _no_data(path_stem: Path, title: str) -> list[Path]:
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=14)
    ax.set_title(title)
    ax.set_axis_off()
    return _save(fig, path_stem)


def _dropped_note(n_dropped: int) -> str:
    return f" ({n_dropped} diverged)" if n_dropped else ""


def layer_shares(layers: list[dict]) -> pd.DataFrame:
    """Each layer's share (%) of E_SNN and of every penalty with every neuron firing (paper Figs. 1–2).

    With s = 1 everywhere: E_SNN(l) ∝ Σ_i ψ_{l,i} = synapses(l) (Eq. 10) = Ω_syn(l)
    (Eq. 13), Ω_total(l) ∝ neurons(l) (Eq. 18), Ω_balance(l) = 1 for each of the
    L layers (Eq. 19). Only Ω_syn's shares equal the energy's.
    Each layer dict has name, synapses and omega_1 (each penalty key's Ω(1) term), as
    `accounting.accounting` reports them.
    """
    synapses = np.array([layer["synapses"] for layer in layers], dtype=float)
    shares = {"layer": [layer["name"] for layer in layers], "E_SNN": 100 * synapses / synapses.sum()}
    for key in PENALTIES:
        terms = np.array([layer["omega_1"][key] for layer in layers], dtype=float)
        shares[key] = 100 * terms / terms.sum()
    return pd.DataFrame(shares)


def plot_layer_shares(layer_tables: dict[str, list[dict]], path_stem: Path) -> list[Path]:
    """Grouped bars per layer of `layer_shares`, one panel per model (paper Figs. 1–2)."""
    models = {name: layers for name, layers in layer_tables.items() if layers}
    if not models:
        return _no_data(path_stem, "layer shares")
    widest = max(len(layers) for layers in models.values())
    fig = Figure(figsize=(max(6.0, 0.55 * widest + 2), 3.2 * len(models)), layout="constrained")
    axes = fig.subplots(len(models), 1, squeeze=False)[:, 0]
    width = 0.8 / len(_SHARES)
    for ax, (name, layers) in zip(axes, models.items()):
        shares = layer_shares(layers)
        x = np.arange(len(shares))
        for j, ((column, symbol), (grey, hatch)) in enumerate(zip(_SHARES.items(), _BAR_LOOKS)):
            offset = (j - (len(_SHARES) - 1) / 2) * width
            ax.bar(x + offset, shares[column], width, label=symbol, color=grey, hatch=hatch, edgecolor="black")
        ax.set_xticks(x, shares["layer"], rotation=45, ha="right", fontsize="small")
        ax.set_ylabel("share, all neurons firing [%]")
        ax.set_title(name)
    axes[0].legend(ncols=len(_SHARES), fontsize="small")
    return _save(fig, path_stem)


def plot_tradeoff(points: pd.DataFrame, path_stem: Path, cutoff: float | None = None) -> list[Path]:
    """Accuracy vs energy, one panel per setting, one series per curve (paper Figs. 3, 5).

    `points` is the run table of `scoring.score_curves`. Each curve (setting,
    method, p, T) shows its runs as markers and Alg. 1's monotone envelope as
    a line (with cutoff P when given, and its AUC(P) in the legend; with all
    points otherwise; c's vertical rise from 0 at x_1 is not drawn). Baseline
    runs are black stars. Diverged or NaN runs
    are left out and counted in the legend. Axes: E_SNN/E_baseline [%] (up to
    110 %; runs beyond are counted in the axis label) and test accuracy [%].
    The legend sits below each panel, so it hides no point or text.
    """
    if points.empty:
        return _no_data(path_stem, "trade-off")
    curves = split_curves(points)
    baseline = points[points["method"] == "baseline"]
    settings = sorted({c.setting for c in curves} | set(baseline["setting"].astype(str)))
    styles = {label: _style(i) for i, label in enumerate(dict.fromkeys(c.label for c in curves))}
    level = 0.0 if cutoff is None else cutoff
    fig = Figure(figsize=(5.5 * len(settings), 5.8), layout="constrained")
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, setting in zip(axes, settings):
        shown_y = [] if cutoff is None else [float(cutoff)]
        for curve in (c for c in curves if c.setting == setting):
            style = styles[curve.label]
            label = curve.label + _dropped_note(curve.n_dropped)
            if cutoff is not None:
                label += f", AUC({cutoff:g}) = {auc(curve.energy, curve.accuracy, cutoff):.1f}"
            ax.plot([], [], label=label, **style)  # legend entry showing both marker and line
            ax.plot(100 * curve.energy, 100 * curve.accuracy, linestyle="none", marker=style["marker"],
                    color=style["color"], alpha=0.6)
            xs, ys = envelope(curve.energy, curve.accuracy, level)
            ax.plot(100 * xs[1:], 100 * ys[1:], linestyle=style["linestyle"], color=style["color"])
            shown_y.extend(100 * curve.accuracy)
        runs = baseline[baseline["setting"] == setting]
        ok = runs[valid_runs(runs)]
        if len(runs):
            ax.plot(100 * ok["energy_ratio"], 100 * ok["test_accuracy"], linestyle="none", marker="*",
                    markersize=14, color="black", label="baseline" + _dropped_note(len(runs) - len(ok)))
            shown_y.extend(100 * ok["test_accuracy"])
        if cutoff is not None:
            ax.axhline(cutoff, color="0.4", linewidth=0.8, linestyle=(0, (1, 3)), label=f"P = {cutoff:g} %")
        if shown_y:
            ax.set_ylim(max(0.0, min(shown_y) - 5), min(100.0, max(shown_y) + 3))
        beyond = int((points.loc[points["setting"] == setting, "energy_ratio"] > _X_MAX / 100).sum())
        ax.set_xlim(0, _X_MAX)  # Alg. 1 scores x ≤ 1; costlier runs would squash the curves
        # the note goes in the axis label and the legend below the axes: neither can cover a point
        note = f"\n({beyond} run(s) above {_X_MAX:g} % not shown)" if beyond else ""
        ax.set_xlabel("E_SNN / E_baseline [%]" + note)
        ax.set_ylabel("test accuracy [%]")
        ax.set_title(setting)
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.16 if note else -0.1), ncols=2)
    return _save(fig, path_stem)


def seed_means(points: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, method, p, T, λ'): mean and sample sd over seeds of the energy ratio and the test
    accuracy of the valid runs, and their number (`n_seeds`); baseline rows form one group per setting."""
    return seed_statistics(points[valid_runs(points)], ["setting", "method", "p", "T", "lam_norm"],
                           ["energy_ratio", "test_accuracy"])


def _mean_with_sd_bars(ax, rows: pd.DataFrame, **style) -> None:
    """`seed_means` rows as markers at the means, with ± 1 sd bars in energy and accuracy (none for one seed)."""
    ax.errorbar(100 * rows["energy_ratio_mean"], 100 * rows["test_accuracy_mean"],
                xerr=100 * rows["energy_ratio_sd"].fillna(0), yerr=100 * rows["test_accuracy_sd"].fillna(0),
                capsize=2, **style)


def plot_seed_spread(points: pd.DataFrame, path_stem: Path) -> list[Path]:
    """The trade-off curves as seed statistics: one panel per setting, one series per curve, a marker at the
    mean over seeds of each λ' (energy ratio, accuracy) with ± 1 sd bars in both directions, joined in λ'
    order; the baseline's mean ± sd as a black star. Axes as `plot_tradeoff`'s."""
    means = seed_means(points)
    if means.empty:
        return _no_data(path_stem, "trade-off seed spread")
    curves = split_curves(points)
    styles = {label: _style(i) for i, label in enumerate(dict.fromkeys(c.label for c in curves))}
    settings = sorted(means["setting"].unique())
    fig = Figure(figsize=(5.5 * len(settings), 5.8), layout="constrained")
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, setting in zip(axes, settings):
        for curve in (c for c in curves if c.setting == setting):
            rows = means[(means["setting"] == setting) & (means["method"] == curve.method) & (means["p"] == curve.p)
                         & (means["T"] == curve.T)].sort_values("lam_norm")
            _mean_with_sd_bars(ax, rows, elinewidth=0.8, label=f"{curve.label} (n = {rows['n_seeds'].max()} seeds)",
                               **styles[curve.label])
        base = means[(means["setting"] == setting) & (means["method"] == "baseline")]
        if len(base):
            _mean_with_sd_bars(ax, base, marker="*", markersize=14, color="black", linestyle="none", label="baseline")
        ax.set_xlim(0, _X_MAX)
        ax.set_xlabel("E_SNN / E_baseline [%], mean ± sd over seeds")
        ax.set_ylabel("test accuracy [%], mean ± sd over seeds")
        ax.set_title(setting)
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2)
    return _save(fig, path_stem)


def plot_training_curves(histories: dict[str, pd.DataFrame], path_stem: Path) -> list[Path]:
    """Training loss, validation accuracy and firing rate vs epoch, one series per label.

    A history has columns epoch, loss, train_accuracy, val_accuracy, rate_mean,
    lam (accuracy and rate as fractions, shown in %); labels read like
    "Ω_syn λ'=8". An empty history (a run that diverged in its first epoch)
    is a legend entry marked "no finished epoch".
    """
    if all(history.empty for history in histories.values()):
        return _no_data(path_stem, "training curves")
    fig = Figure(figsize=(14, 4), layout="constrained")
    axes = fig.subplots(1, len(_HISTORY_PANELS))
    for i, (label, history) in enumerate(histories.items()):
        if history.empty:
            axes[0].plot([], [], label=f"{label} (no finished epoch)", **_style(i))
            continue
        missing = [c for c in ("epoch", *(column for column, _, _ in _HISTORY_PANELS)) if c not in history.columns]
        if missing:
            raise ValueError(f"history {label!r} lacks columns {missing}")
        markevery = max(1, len(history) // 10)
        for ax, (column, _, scale) in zip(axes, _HISTORY_PANELS):
            ax.plot(history["epoch"], scale * history[column], markevery=markevery, label=label, **_style(i))
    for ax, (_, ylabel, _) in zip(axes, _HISTORY_PANELS):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize="small")
    return _save(fig, path_stem)


_README_FILES = (  # (file, what, step that writes it, when: "always", "seeds" (> 1), "claims" (≥ 3 seeds), "cost
    #                  models" (energies under other cost models), "paper" (the paper's setting))
    ("`tables/tradeoff_points.csv`, `.md`", "one row per run: tuned baselines, Ω_syn / Ω_total / Ω_balance runs, ann2snn "
     "at each T (energy_ratio relative to the setting's baseline)", "score", "always"),
    ("`tables/tradeoff_scores.csv`, `.md`", "per curve (setting, method, p, T), all seeds pooled: AUC, Spearman, MI, "
     "k-NN MI at each cutoff, points used and dropped", "score", "always"),
    ("`tables/seed_scores.csv`, `.md`", "the same per curve and seed, each seed's runs scored alone", "score", "always"),
    ("`tables/seed_summary.csv`, `.md`", "mean and sd over seeds of every per-seed score", "score", "always"),
    ("`tables/method_comparison.csv`, `.md`", "the paper's Tables 4, 12–20 layout (pooled); best per column in bold; "
     "with several seeds also AUC and Spearman as mean ± sd over the seeds' own curves", "score", "always"),
    ("`tables/grid.csv`, `.md`", "Sec. 4.2 grid (Tables 2, 3, 8–11): λ, λ_WD, B_BN → accuracy, E_SNN/E_baseline, "
     "dead rate, R, mean ± std over seeds", "score", "always"),
    ("`tables/training_time.csv`, `.md`", "Table 7: wall time per epoch with each penalty relative to none (runs "
     "share the cores: docs/claims.md has the controlled measurement)", "score", "always"),
    ("`tables/claims.csv`, `.md`", "each of the paper's claims: the paired per-seed evidence and a verdict "
     "(docs/claims.md); `tables/claims_summary.md` one line per claim", "score", "claims"),
    ("`tables/cost_models.csv`, `.md`", "every curve's AUC(P) with energy under each cost model "
     "(docs/energy-models.md)", "score", "cost models"),
    ("`tables/paper_comparison.csv`, `.md`", "ours beside the paper's Table 4: the nine curves' AUC(70), AUC(50), "
     "differences, ranks", "score", "paper"),
    ("`environment.json`", "what trained the runs: versions, CPU, the ISA in effect, threads, the pinning "
     "(`pipeline.numerics`)", "score", "always"),
    ("`reference.json`", "the runs `python -m pipeline.runs.verify` retrains and compares bit for bit", "score", "always"),
    ("`metrics.json`", "headline DVC metrics: baseline accuracy and energy, every curve's AUCs (with several seeds "
     "also their mean and sd over seeds) (`dvc metrics show`)", "score", "always"),
    ("`plots/tradeoff/<setting>.csv`", "every trade-off run of a setting (column `series` names its curve), drawn by "
     "`dvc plots show/diff`", "score", "always"),
    ("`plots/curves/<setting>.csv`", "per-epoch histories of the baseline and Ω_syn runs (column `run`), drawn by "
     "`dvc plots show/diff`", "figures", "always"),
    ("`figures/layer_shares.png`, `.pdf`", "share of E_SNN, Ω_syn, Ω_total, Ω_balance per layer with every neuron "
     "firing (Figs. 1–2)", "figures", "always"),
    ("`figures/tradeoff.png`, `.pdf`", "energy–accuracy trade-off, runs and Alg. 1 envelope per method (Figs. 3, 5)",
     "figures", "always"),
    ("`figures/seed_spread.png`, `.pdf`", "the trade-off curves as per-λ' means over seeds with ± 1 sd bars", "figures",
     "seeds"),
    ("`figures/cost_models.png`, `.pdf`", "the first setting's trade-off curves with energy under each cost model",
     "figures", "cost models"),
    ("`figures/training_curves.png`, `.pdf`", "loss, validation accuracy and firing rate per epoch for a few λ'",
     "figures", "always"),
    ("`README.md`", "this page", "figures", "always"),
)


def _made_by(item: str) -> tuple[str, ...]:
    """Who writes results/<item>/: the stages `score@<item>` and `figures@<item>` of dvc.yaml."""
    when = ("`dvc repro` from a fresh clone rewrites it" if item == "default" else
            f"a fresh clone's `dvc repro` finds it up to date; `dvc repro -f figures@{item}` regenerates it")
    return (f"Everything here is written by the stages `score@{item}` and `figures@{item}` (see `../../dvc.yaml`)",
            f"and committed; {when}. This page itself is written by `pipeline.figures.results_readme`: edit that",
            "function, not this file.")


def _files_table(shown: set[str]) -> list[str]:
    rows = [row for row in _README_FILES if row[3] in shown]
    return ["| file | what | step |", "|---|---|---|", *(f"| {f} | {what} | `{step}` |" for f, what, step, _ in rows)]


def _best_auc(comparison: pd.DataFrame, cutoff: float) -> str:
    """One sentence per setting: the curve with the largest AUC(cutoff) in the comparison table, if any."""
    column = f"AUC({cutoff:g})"
    if comparison.empty or column not in comparison.columns:
        return ""
    sentences = []
    for setting, rows in comparison.groupby("setting", sort=True):
        rows = rows[rows[column].notna()]
        if len(rows):
            best = rows.loc[rows[column].idxmax()]
            sentences.append(f"In `{setting}` the largest {column} is {best['curve']}'s ({best[column]:.1f}).")
    return " ".join(sentences)


def results_readme(comparison: pd.DataFrame, comparison_md: str, points: pd.DataFrame, cutoff: float,
                   curve_setting: str | None = None, curve_lam_norms: list[float] | None = None,
                   profile: str = "default", folder: str = "default", paper: bool = False) -> str:
    """results/<folder>/README.md: the file list, the headline table and each committed figure with what
    it shows. `folder` is the pipeline item (dvc.yaml's `profiles`): `default` (whichever `profile`
    params.yaml selects) or a committed profile's name.

    Written by the `figures` step from what it has just drawn, so it never
    goes stale: `comparison` / `comparison_md` are tables/method_comparison.csv
    / .md, `points` the run table given to `plot_tradeoff` with `cutoff` P,
    `curve_setting` and `curve_lam_norms` those of `plot_training_curves`; `paper`: the score step wrote
    tables/paper_comparison (the item has the paper's setting). Images are linked relatively (figures/*.png), so the page shows them on a
    repository host or in any Markdown viewer of a checkout.
    """
    n_seeds = points["seed"].nunique() if len(points) else 0
    seeds = n_seeds > 1
    costs = any(column.startswith("energy_pj_") for column in points.columns)
    shown = {"always", *(["seeds"] if seeds else []), *(["claims"] if n_seeds >= 3 else []),
             *(["cost models"] if costs else []), *(["paper"] if paper else [])}
    n_settings = points["setting"].nunique() if len(points) else 0
    above = points[points["energy_ratio"] > _X_MAX / 100] if len(points) else points
    above_labels = [curve.label for curve in split_curves(above) for _ in curve.energy]
    above_counts = ", ".join(f"{label}: {above_labels.count(label)}" for label in dict.fromkeys(above_labels))
    lam_text = ", ".join(f"{lam:g}" for lam in curve_lam_norms) if curve_lam_norms else "a few values"
    best = _best_auc(comparison, cutoff)
    lines = [
        f"# results/{folder}/" + ("" if profile == folder else f" (profile `{profile}`)"),
        "",
        *_made_by(folder),
        "",
        "## Headline: the trade-off scores per method",
        "",
        "`tables/method_comparison.md` (the paper's Tables 4, 12–20 layout): per setting and curve, the area",
        "under Alg. 1's accuracy–energy envelope above a cutoff accuracy P (AUC(P), higher is better), the",
        "Spearman correlation and mutual information between energy and accuracy; best per column in bold.",
        "",
        comparison_md.strip(),
        "",
        *([best, ""] if best else []),
        "## Figures",
        "",
        "### Energy–accuracy trade-off (paper Figs. 3, 5)",
        "",
        "![energy-accuracy trade-off](figures/tradeoff.png)",
        "",
        f"One panel per setting ({n_settings} here). Each method's runs are markers, one per λ' and seed, at",
        "their energy relative to the setting's tuned baseline (x, %) and test accuracy (y, %); the line",
        f"through them is Alg. 1's monotone envelope with cutoff P = {cutoff:g} % (dotted), whose area is the",
        "AUC in the legend. Up and to the left is better: a curve above another reaches higher accuracy for",
        "the same energy. The baseline is the black star at 100 %. The x axis stops at 110 %"
        + (f"; the {len(above)} costlier run(s) ({above_counts}) are counted in the axis label." if len(above)
           else "."),
        "",
        *(["### The same curves over seeds", "", "![seed spread](figures/seed_spread.png)", "",
            "Each marker is the mean over seeds of one λ' (energy ratio, accuracy) with ± 1 sd bars in both",
            "directions, joined in λ' order; the baseline's mean ± sd is the black star. Overlapping bars mean",
            "the seeds cannot tell two curves apart at that λ'.", ""] if seeds else []),
        *(["### Under other cost models", "", "![cost models](figures/cost_models.png)", "",
            "The first setting's curves once per cost model (docs/energy-models.md): each run's energy under that",
            "model over the baseline's. The paper's counts synaptic events only; `lemaire2022` adds memory",
            "reads and writes, neuron updates and addressing (Lemaire et al. 2022); the device presets price",
            "synaptic operations and neuron updates as Loihi and SpiNNaker do. `tables/cost_models.md` scores every",
            "curve under each.", ""] if costs else []),
        "### Training curves",
        "",
        "![training curves](figures/training_curves.png)",
        "",
        "Training loss, validation accuracy and mean firing rate per epoch"
        + (f" in `{curve_setting}`" if curve_setting else "")
        + f" for the tuned baseline and Ω_syn at λ' = {lam_text} (`figures.curve_lam_norms` in",
        "`params.yaml`): compare how far each λ' lowers the firing rate (right) with what it costs in",
        "validation accuracy (middle) and whether training still converges (left).",
        "",
        "### Per-layer shares with every neuron firing (paper Figs. 1–2)",
        "",
        "![per-layer shares](figures/layer_shares.png)",
        "",
        "For each model, each layer's share (%) of the SNN's energy E_SNN and of the three penalties when",
        "every neuron fires. Only Ω_syn's bars match E_SNN's (it weighs a spike by its synapses, as the",
        "energy does); Ω_total weighs neurons equally and Ω_balance weighs layers equally, so they",
        "misplace the pressure on layers with many cheap or few costly neurons.",
        "",
        "## Interactive plots",
        "",
        "`dvc plots show` (or `dvc plots diff <rev>` to compare with a revision) writes",
        "`dvc_plots/index.html` from `plots/*/*.csv`: the same trade-off and training curves, one plot per",
        "setting, with tooltips. The page renders offline (Vega is inlined from `../../plots/offline.html`).",
        "",
        "## Files",
        "",
        *_files_table(shown),
        "",
    ]
    return "\n".join(lines)
