"""params.yaml: the shipped files validate; bad overrides fail in one line naming the key."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import ConfigError
from pipeline.runs.params import resolve
from pipeline.runs.plans import (ann2snn_plan, chain_levels, choose_baseline, grid_plan, grid_references, penalty_plan,
                                 tune_wd_plan)
from pipeline.runs.store import run_id

ROOT = Path(__file__).resolve().parents[1]
ALL = ["profile", "settings", "compute", "data", "train", "tune_wd", "penalty", "grid", "ann2snn",
       "score", "figures"]


@pytest.fixture
def repo(params_dir):
    return params_dir


def edit(path: Path, change) -> None:
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params))


@pytest.mark.parametrize("profile", ["default", "paper", "claims"])
def test_shipped_profiles_validate(repo, profile):
    edit(repo / "params.yaml", lambda p: p.update(profile=profile))
    params = resolve("default")
    if profile == "paper":
        assert len(params["settings"]) == 10 and params["train"]["epochs"] == 150
        assert params["penalty"]["p"] == [1, 2] and len(params["penalty"]["lam_norms"]) == 14
        assert params["data"]["data_dir"] == "data"  # untouched sections keep params.yaml's values


@pytest.mark.parametrize("change,message", [
    (lambda p: p["penalty"].update(p=0.5), r"params key 'penalty.p' must be >= 1 \(got 0.5\)"),
    (lambda p: p["penalty"].update(p=[1, "two"]), r"params key 'penalty.p\[1\]' must be a number"),
    (lambda p: p["penalty"].update(lam_norm=[1]), r"unknown params key 'penalty.lam_norm'; allowed: kinds, p, lam_norms"),
    (lambda p: p["penalty"].update(lam_norms=[-1]), r"'penalty.lam_norms\[0\]' must be >= 0"),
    (lambda p: p["compute"].update(workers=True), r"'compute.workers' must be an integer \(got bool True\)"),
    (lambda p: p.update(trian={"epochs": 3}), r"unknown params section 'trian'; allowed: profile, settings"),
    (lambda p: p["score"].update(cutoffs=[70, 150]), r"params key 'score.cutoffs\[1\]' must be < 100 \(got 150"),
    (lambda p: p["ann2snn"].update(T=[0]), r"params key 'ann2snn.T\[0\]' must be >= 1 \(got 0\)"),
    (lambda p: p["ann2snn"].update(neuron="lif"), r"'ann2snn.neuron' must be one of multi, single \(got 'lif'\)"),
    (lambda p: p["ann2snn"].update(encoding="rate"), r"'ann2snn.encoding' must be one of spread, repeat"),
    (lambda p: p["ann2snn"].pop("encoding"), r"params section 'ann2snn' lacks the key\(s\) encoding"),
    (lambda p: p["tune_wd"].update(weight_decays=[]), r"params key 'tune_wd.weight_decays' must be a non-empty"),
    (lambda p: p["tune_wd"].update(weight_decays="abc"), r"'tune_wd.weight_decays' must be a non-empty list \(got"),
    (lambda p: p["figures"].update(curve_lam_norms=[7]), r"'figures.curve_lam_norms' names λ' \[7.0\] that"),
    (lambda p: p["figures"].update(cutoff=60), r"'figures.cutoff' must be one of score.cutoffs"),
    (lambda p: p["figures"].update(models=["lenet"]), r"'figures.models\[0\]' must be one of cnn7"),
    (lambda p: p["settings"][0].update(weight_decays=[]), r"'settings\[0\].weight_decays' must be a non-empty"),
    (lambda p: p.update(profile="gpu"), r"params key 'profile' must be one of claims, default, fmnist, paper \(got 'gpu'\)"),
    (lambda p: p["settings"][0].update(ps=[1, 0.5]), r"params key 'settings\[0\].ps\[1\]' must be >= 1 \(got 0.5\)"),
    (lambda p: p["grid"].update(settings=[]), r"params key 'grid.settings' must be a non-empty list \(got \[\]\)"),
    (lambda p: p["ann2snn"].update(settings=["cnn7-cifar"]), r"'ann2snn.settings' names \['cnn7-cifar'\], not in settings"),
    (lambda p: p.update(extras={}), r"unknown params section 'extras'"),
    (lambda p: p["settings"][0].update(lr=-1), r"settings\[0\]' \(cnn7-digits-adam-s3nn\): config key 'lr' must be > 0"),
    (lambda p: p["settings"][0].update(model="lenet"), r"config key 'model' must be one of"),
])
def test_bad_values_are_named(repo, change, message):
    edit(repo / "params.yaml", change)
    with pytest.raises(ConfigError, match=message):
        resolve("default")


def test_plans_cover_the_grids(repo):
    params = resolve("default")
    settings = params["settings"]
    tune = tune_wd_plan(settings, params, "splits")
    assert [c.weight_decay for _, c in tune] == params["tune_wd"]["weight_decays"]
    assert all(c.penalty == "none" and c.split_file == "splits/digits.json" for _, c in tune)
    fake = [{"val_accuracy": acc, "test_accuracy": acc, "energy_pj": 10.0 * i}
            for i, acc in enumerate([0.5, 0.9, 0.9])]
    baselines = choose_baseline(tune, fake)
    name = settings[0]["name"]
    assert baselines[name]["weight_decay"] == params["tune_wd"]["weight_decays"][1]  # tie → smaller λ_WD
    assert baselines[name]["energy_pj"] == 10.0
    train = penalty_plan(settings, params, "splits", "total", baselines)
    assert len(train) == len(params["penalty"]["lam_norms"]) * len(params["penalty"]["seeds"])
    assert {c.weight_decay for _, c in train} == {baselines[name]["weight_decay"]}
    assert [c.lam_norm for _, c in train] == params["penalty"]["lam_norms"]
    grid = grid_plan(settings, params, "splits")
    g = params["grid"]
    sizes = [len({0, *g[key]}) for key in ("lams", "weight_decays", "bn_decays")]
    decays = 1 + (sizes[1] - 1) * sizes[2]  # λ_WD = 0 with B_BN = 0 only: B_BN scales a term of λ_WD
    assert len(grid) == sizes[0] * decays * len(g["seeds"])
    assert not [c for _, c in grid if c.bn_decay and not c.weight_decay]
    assert all(c.penalty == "syn" and c.p == 1 and c.lam_norm == 0 for _, c in grid)
    assert {(c.lam, c.weight_decay, c.bn_decay) for _, c in grid} >= {(0, 0, 0), (0, g["weight_decays"][0], 0)}
    fake = [{"energy_pj": 100.0 + i} for i in range(len(grid))]
    (zero,) = [i for i, (_, c) in enumerate(grid) if c.lam == c.weight_decay == c.bn_decay == 0]
    assert grid_references(grid, fake) == [100.0 + zero] * len(grid)  # one seed: one normaliser


def test_stage_fails_in_one_line_before_any_work(repo):
    edit(repo / "params.yaml", lambda p: p["data"].update(split_seed=-1))
    shutil.copytree(ROOT / "stages", repo / "stages")
    done = subprocess.run([sys.executable, "stages/check.py", "default"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "error: params key 'data.split_seed' must be >= 0 (got -1)\n"
    assert not (repo / "artifacts").exists()


def test_a_setting_overrides_the_shared_sections(repo):
    edit(repo / "params.yaml", lambda p: p["settings"][0].update(epochs=3, weight_decays=[0.5]))
    params = resolve("default")
    plan = tune_wd_plan(params["settings"], params, "splits")
    assert [(c.epochs, c.weight_decay) for _, c in plan] == [(3, 0.5)]


def test_default_profile_file_is_the_committed_params():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    del params["profile"]
    assert yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text()) == params


def test_a_value_set_in_params_wins_over_the_profile(repo, capsys):
    edit(repo / "params.yaml", lambda p: (p.update(profile="paper"), p["penalty"].update(p=2)))
    params = resolve("default")
    assert params["penalty"]["p"] == [2.0]  # -S penalty.p=2 under profile=paper trains p = 2 only, as DVC records
    assert params["penalty"]["lam_norms"] == [float(x) for x in 2 ** np.arange(14)]  # untouched: the profile's
    assert "penalty.p = 2 (set in params.yaml) wins over profile paper's [1, 2]" in capsys.readouterr().err


def test_exponent_numbers_read_alike_in_params_and_config_files(repo):
    text = (repo / "params.yaml").read_text().replace("lam_norms: [1, 2, 4, 8, 16, 64, 256, 1024]",
                                                      "lam_norms: [1, 2, 4, 8, 16, 64, 256, 1e3]")
    (repo / "params.yaml").write_text(text.replace("curve_lam_norms: [4, 64, 1024]", "curve_lam_norms: [4, 64]"))
    assert resolve("default")["penalty"]["lam_norms"][-1] == 1000.0


def _claims_plans(params: dict) -> dict[str, list]:
    """Every plan of the claims profile, with λ_WD = 0 standing in for the tuned baselines."""
    settings = params["settings"]
    baselines = {s["name"]: {"weight_decay": 0.0} for s in settings}
    return {"tune_wd": tune_wd_plan(settings, params, "splits"),
            **{kind: penalty_plan(settings, params, "splits", kind, baselines) for kind in ("syn", "total", "balance")},
            "grid": grid_plan(settings, params, "splits"),
            "ann2snn": [(name, cfg) for _, name, cfg in ann2snn_plan(settings, params, "splits", baselines)]}


def test_claims_profile_runs_the_paper_design_with_seeds(repo):
    params = resolve("claims")
    names = [s["name"] for s in params["settings"]]
    plans = _claims_plans(params)
    surrogates = {(c.model, c.optimizer, c.surrogate) for _, c in plans["syn"]}
    assert surrogates == {("cnn7", "adam", "s3nn"), ("cnn7", "adam", "linear"), ("cnn7", "adam", "sigmoid"),
                          ("cnn7", "msgd", "s3nn"), ("vgg11", "adam", "s3nn"), ("resnet18", "adam", "s3nn")}
    for plan in plans.values():
        assert {c.seed for _, c in plan} == {0, 1, 2, 3}
    with_p2 = {name for name, c in plans["syn"] if c.p == 2}
    assert with_p2 == {names[0]}  # `ps: [1, 2]` on the first setting only; the others take penalty.p = 1
    assert {name for name, _ in plans["grid"]} == {name for name, _ in plans["ann2snn"]} == {names[0]}
    assert len(plans["grid"]) == 3 * 3 * 4  # λ ∈ {0, 1e-6, 1e-5} × (λ_WD, B_BN) ∈ {(0, 0), (1e-4, 0), (1e-4, 1)} × seeds
    conversions = {(cfg.lam_norm, cfg.warm_start is None) for _, cfg in plans["ann2snn"]}
    assert conversions == {(0, True), (4, True), (16, True), (64, True), (4, False), (16, False), (64, False)}
    # per seed: 6 settings × 2 λ_WD; per kind 4 λ' on 6 settings and p = 2 on one; 2 protocols × 4 λ'
    assert [len(plans[k]) for k in plans] == [4 * 12, 4 * 28, 4 * 28, 4 * 28, 36, 4 * 8]


def test_claims_profile_takes_only_how_keys_from_params(repo):
    edit(repo / "params.yaml", lambda p: (p["penalty"].update(p=2), p["compute"].update(workers=1, threads=2)))
    params = resolve("claims")
    assert params["penalty"]["p"] == [1.0] and params["compute"]["workers"] == 1 and params["profile"] == "claims"
    assert params["compute"]["threads"] == 1  # it changes results: the profile's, not params.yaml's
    with pytest.raises(ConfigError, match=r"profile 'nope' not found"):
        resolve("nope")


def test_an_empty_claims_grid_stops_the_claims_check_in_one_line(repo):
    (repo / "profiles" / "claims.yaml").write_text(
        (ROOT / "profiles" / "claims.yaml").read_text().replace("settings: [cnn7-digits-adam-s3nn]\n  lams",
                                                                "settings: []\n  lams"))
    shutil.copytree(ROOT / "stages", repo / "stages")
    done = subprocess.run([sys.executable, "stages/check.py", "claims"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "error: params key 'grid.settings' must be a non-empty list (got [])\n"
    assert not (repo / "artifacts").exists() and not (repo / "results").exists()


def test_the_ramp_is_one_chain_of_warm_starts_per_seed_beside_per_intensity(repo):
    edit(repo / "params.yaml", lambda p: p["ann2snn"].update(protocol=["ramp", "per_intensity"], seeds=[0, 1],
                                                              lam_norms=[16, 0, 4], ramp_epochs=3))
    params = resolve("default")
    plan = ann2snn_plan(params["settings"], params, "splits", {"cnn7-digits-adam-s3nn": {"weight_decay": 0.0}})
    ramp = [(cfg.seed, cfg.lam_norm, cfg.epochs, cfg.warm_start) for protocol, _, cfg in plan if protocol == "ramp"]
    by_id = {run_id(cfg): cfg for _, _, cfg in plan}
    for seed in (0, 1):
        chain = [r for r in ramp if r[0] == seed]
        assert [(lam, epochs) for _, lam, epochs, _ in chain] == [(0, 10), (4, 3), (16, 3)]  # ascending λ'
        assert chain[0][3] is None
        assert [by_id[parent].lam_norm for *_, parent in chain[1:]] == [0, 4]  # each from the previous λ'
    scratch = [cfg for protocol, _, cfg in plan if protocol == "per_intensity"]
    assert all(cfg.warm_start is None and cfg.epochs == 10 for cfg in scratch)
    levels = chain_levels(plan)
    assert [len(level) for level in levels] == [6, 2, 2]  # per_intensity's λ' = 0 runs are the ramps' first links
    assert {cfg.lam_norm for _, cfg in levels[1]} == {4}
