"""Result tables (paper Tables 2–4, 7–20) and figures (Figs. 1–3, 5) render what they should (spec §6)."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from pipeline.figures import layer_shares, plot_layer_shares, plot_tradeoff, plot_training_curves
from pipeline.scoring import score_curves
from pipeline.tables import comparison_best, grid_table, method_comparison, time_table, write_table


def _run(setting, method, p, acc, energy, T=1, diverged=False):
    return dict(setting=setting, method=method, penalty=method, p=p, lam_norm=1.0, seed=0, T=T,
                test_accuracy=acc, energy_ratio=energy, energy_pj=1.0, rate_mean=0.1, rate_sum=0.5,
                dead_rate=0.0, diverged=diverged)


@pytest.fixture
def points():
    return pd.DataFrame([
        _run("cnn7", "baseline", np.nan, 0.92, 1.0),
        _run("cnn7", "syn", 1, 0.80, 0.3), _run("cnn7", "syn", 1, 0.90, 0.6),
        _run("cnn7", "syn", 1, 0.95, 0.2, diverged=True),
        _run("cnn7", "total", 2, 0.85, 0.5), _run("cnn7", "total", 2, 0.88, 0.7),
        _run("cnn7", "ann2snn", np.nan, 0.9, 1.4, T=5),
        _run("vgg11", "baseline", np.nan, 0.90, 1.0),
        _run("vgg11", "syn", 1, 0.75, 0.4), _run("vgg11", "syn", 1, 0.88, 0.8),
    ])


def test_write_table_writes_csv_and_bold_markdown(tmp_path):
    df = pd.DataFrame({"setting": ["a", "a", "b", "b"], "curve": ["x", "y", "x", "y"],
                       "score": [0.5, 0.9, 0.7, 0.3], "cost": [3, 1, 2, 2], "note": [1.5, 2.0, 2.5, 3.0]})
    csv, md = write_table(df, tmp_path / "sub" / "t", best={"score": "max", "cost": "min"})
    assert csv == tmp_path / "sub" / "t.csv" and md.name == "t.md"
    pd.testing.assert_frame_equal(pd.read_csv(csv), df, check_dtype=False)
    text = md.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("| a") or line.startswith("| b")]
    assert "**0.90**" in lines[1] and "**0.50**" not in text  # best per setting, not overall
    assert "1.50" in lines[0]  # our float format survives tabulate (no re-parsing to 1.5)
    assert "**0.70**" in lines[2] and "**0.30**" not in text
    assert "**1**" in lines[1] and "**3**" not in text
    assert text.count("**2**") == 2  # a tie: both bold


def test_write_table_nan_and_bad_best(tmp_path):
    df = pd.DataFrame({"v": [np.nan, 0.25], "label": ["p", "q"]})
    _, md = write_table(df, tmp_path / "t", best={"v": "max"})
    assert "**0.25**" in md.read_text(encoding="utf-8") and "—" in md.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="numeric"):
        write_table(df, tmp_path / "t", best={"label": "max"})
    with pytest.raises(ValueError, match="'max' or 'min'"):
        write_table(df, tmp_path / "t", best={"v": "largest"})


def test_method_comparison_layout(points, tmp_path):
    table = method_comparison(score_curves(points))
    assert list(table.columns) == ["setting", "curve", "AUC(70)", "AUC(50)", "Spearman(70)", "Spearman(50)",
                                   "MI(70)", "MI(50)", "MI-kNN(70)", "MI-kNN(50)"]
    assert list(table["curve"]) == ["Ω_syn p=1", "Ω_total p=2", "ann2snn T=5", "Ω_syn p=1"]
    best = comparison_best(table)
    assert set(best) == set(table.columns) - {"setting", "curve"} and set(best.values()) == {"max"}
    _, md = write_table(table, tmp_path / "comparison", best=best)
    assert "**" in md.read_text(encoding="utf-8")
    empty = method_comparison(score_curves(pd.DataFrame()))
    assert empty.empty and list(empty.columns) == list(table.columns)


def _grid_run(lam, seed, acc, diverged=False):
    return dict(setting="cnn7", lam=lam, weight_decay=1e-4, bn_decay=0, seed=seed, test_accuracy=acc,
                energy_ratio=0.5 + 0.01 * seed, dead_rate=0.1, rate_mean=0.05, rate_sum=0.3, diverged=diverged)


def test_grid_table_mean_std():
    runs = pd.DataFrame([
        _grid_run(0.0, 0, 0.90), _grid_run(0.0, 1, 0.92), _grid_run(0.0, 2, 0.94),
        _grid_run(1e-6, 0, 0.80), _grid_run(1e-6, 1, 0.10, diverged=True),
        _grid_run(1e-5, 0, 0.20, diverged=True),
    ])
    table = grid_table(runs)
    assert list(table["lam"]) == [0.0, 1e-6, 1e-5]
    base = table.iloc[0]
    # Accuracy 90, 92, 94 %: mean 92, sample std sqrt((4 + 0 + 4) / 2) = 2.
    assert base["test_accuracy [%]"] == "92.00 ± 2.00"
    # Energy 50, 51, 52 %: mean 51, std 1. Constant dead rate: std 0.
    assert base["energy_ratio [%]"] == "51.00 ± 1.00"
    assert base["dead_rate [%]"] == "10.00 ± 0.00"
    assert (base["n_seeds"], base["n_diverged"]) == (3, 0)
    one = table.iloc[1]  # the diverged seed is left out: one seed, the mean alone
    assert one["test_accuracy [%]"] == "80.00" and (one["n_seeds"], one["n_diverged"]) == (1, 1)
    none = table.iloc[2]
    assert none["test_accuracy [%]"] == "—" and (none["n_seeds"], none["n_diverged"]) == (0, 1)


def test_time_table_ratios():
    runs = pd.DataFrame([
        dict(setting="cnn7", penalty="syn", p=1, epoch_seconds=12.0),
        dict(setting="cnn7", penalty="none", p=np.nan, epoch_seconds=9.0),
        dict(setting="cnn7", penalty="none", p=np.nan, epoch_seconds=11.0),
        dict(setting="cnn7", penalty="balance", p=2, epoch_seconds=15.0),
        dict(setting="vgg11", penalty="total", p=1, epoch_seconds=30.0),
    ])
    table = time_table(runs)
    assert list(table["penalty"]) == ["none", "syn", "balance", "total"]
    ratio = dict(zip(table["setting"] + "/" + table["penalty"], table["ratio_to_none"]))
    assert ratio["cnn7/none"] == 1.0
    assert ratio["cnn7/syn"] == pytest.approx(12.0 / 10.0)
    assert ratio["cnn7/balance"] == pytest.approx(1.5)
    assert math.isnan(ratio["vgg11/total"])  # no reference run in that setting
    assert table.loc[table["penalty"] == "none", "n_runs"].item() == 2


def test_layer_shares_only_syn_matches_energy():
    layers = [dict(name=name, synapses=synapses, omega_1={"syn": synapses, "total": neurons, "balance": 1})
              for name, neurons, synapses in (("conv1", 16, 300), ("conv2", 8, 100), ("fc", 10, 100))]
    shares = layer_shares(layers)
    np.testing.assert_allclose(shares["E_SNN"], [60, 20, 20])
    np.testing.assert_allclose(shares["syn"], shares["E_SNN"])
    np.testing.assert_allclose(shares["total"], [100 * 16 / 34, 100 * 8 / 34, 100 * 10 / 34])
    np.testing.assert_allclose(shares["balance"], [100 / 3] * 3)


def _assert_written(paths):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert plt.get_fignums() == []  # nothing left open in pyplot


def test_figures_write_png_and_pdf(points, tmp_path):
    layers = [dict(name=f"l{i}", synapses=40 // (i + 1), omega_1={"syn": 40 // (i + 1), "total": 4 * (i + 1),
                                                                  "balance": 1}) for i in range(5)]
    _assert_written(plot_layer_shares({"CNN7": layers, "VGG11": layers[:3]}, tmp_path / "a" / "shares"))
    _assert_written(plot_tradeoff(points, tmp_path / "b" / "tradeoff"))
    _assert_written(plot_tradeoff(points, tmp_path / "b" / "tradeoff70", cutoff=70))
    epochs = np.arange(1, 21)
    history = pd.DataFrame(dict(epoch=epochs, loss=1 / epochs, train_accuracy=0.9, val_accuracy=0.85,
                                rate_mean=0.1, lam=0.5))
    _assert_written(plot_training_curves({"Ω_syn λ'=8": history, "Ω_total λ'=8": history * 1.1},
                                         tmp_path / "c" / "training"))


def test_figures_empty_inputs_say_no_data(tmp_path):
    _assert_written(plot_layer_shares({}, tmp_path / "shares"))
    _assert_written(plot_layer_shares({"CNN7": []}, tmp_path / "shares_empty_model"))
    _assert_written(plot_tradeoff(pd.DataFrame(), tmp_path / "tradeoff"))
    _assert_written(plot_training_curves({}, tmp_path / "training"))
    _assert_written(plot_training_curves({"x": pd.DataFrame()}, tmp_path / "training_empty_history"))
