"""A finished run re-scored under every cost model from its metrics.json equals the meter run over its
test set with the saved weights (trained single-step run, and a converted T-step IF SNN); a run trains
with an energy penalty, normalised by its own all-firing energy."""
import csv
import json

import pytest
import torch

from pipeline.anysnn import SynapticEnergy
from pipeline.config import RunConfig
from pipeline.convert import evaluate_converted, run_if_snn, to_if_snn
from pipeline.cost_models import COST_MODELS
from pipeline.data import INFO, load_datasets
from pipeline.models import create_model
from pipeline.neuron import QReLU
from pipeline.penalties import omega_all_firing, penalty_basis
from pipeline.rundir import HISTORY, MODEL, SPLIT
from pipeline.run_energy import energy_by_cost_model, run_wiring
from pipeline.train import build_model, train_run

TINY = dict(dataset="digits", model="cnn7", width=0.125, limit_train=100, batch_size=50, epochs=1,
            penalty="energy_lemaire2022", lam_norm=2.0, seed=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = RunConfig.from_dict(TINY)
    return cfg, out, train_run(cfg, out)


def test_a_run_trains_with_an_energy_penalty_normalised_by_its_all_firing_energy(run):
    cfg, out, metrics = run
    assert metrics["T"] == 1 and not metrics["diverged"]
    model = build_model(cfg)
    omega_1 = omega_all_firing(penalty_basis(model, cfg.penalty), cfg.penalty, 1)  # pJ with every neuron firing once
    rows = list(csv.DictReader((out / HISTORY).open()))
    assert float(rows[0]["lam"]) == pytest.approx(cfg.lam_norm / omega_1)  # λ_e = λ'/Ω_E(1) · e/E, e = E = 1


def test_rescoring_equals_the_meter_over_the_test_set(run):
    cfg, out, metrics = run
    scores = energy_by_cost_model(metrics, run_wiring(metrics["config"]))
    assert set(scores) == set(COST_MODELS)
    assert scores["paper"]["energy_pj"] == pytest.approx(metrics["energy_pj"], rel=1e-12)
    model = build_model(cfg)
    model.load_state_dict(torch.load(out / MODEL, weights_only=True))
    model.eval()
    test = load_datasets(cfg.dataset, cfg.data_dir, split_seed=cfg.split_seed, split_file=out / SPLIT,
                         randaugment=False).test
    loader = torch.utils.data.DataLoader(test, batch_size=cfg.batch_size)
    info = INFO[cfg.dataset]
    for name in COST_MODELS:
        meter = SynapticEnergy(model, (1, info.in_channels, info.input_size, info.input_size), name, cfg.psi)
        total, n = 0.0, 0
        with torch.no_grad():
            for x, _ in loader:
                with meter:
                    model(x)
                    total += meter.energy_pj() * len(x)
                    n += len(x)
        meter.close()
        assert scores[name]["energy_pj"] == pytest.approx(total / n, rel=1e-9), name
    assert scores["lemaire2022"]["constant_pj"] > 0 and scores["paper"]["constant_pj"] == 0


def test_a_converted_point_rescores_like_the_meter_on_its_if_snn():
    torch.manual_seed(0)
    config = dict(model="cnn7", dataset="fashion_mnist", width=0.0625, neuron="qrelu", psi="padded")
    ann = create_model("cnn7", width=0.0625, neuron=QReLU).eval()
    x = torch.rand(3, 1, 32, 32) * 2
    result = evaluate_converted(ann, [(x, torch.zeros(3, dtype=torch.long))], 4)
    scores = energy_by_cost_model(result, run_wiring(config, converted=True))
    snn = to_if_snn(ann)
    for name in ("paper", "lemaire2022", "loihi"):
        meter = SynapticEnergy(snn, (1, 1, 32, 32), name)
        with meter, torch.no_grad():
            run_if_snn(snn, x, 4)
            assert meter.steps() == 4
            assert scores[name]["energy_pj"] == pytest.approx(meter.energy_pj(), rel=1e-9), name
        meter.close()
    assert scores["paper"]["energy_pj"] == pytest.approx(result["energy_pj"], rel=1e-12) and result["energy_pj"] > 0


def test_layers_that_do_not_match_are_refused(run):
    _, _, metrics = run
    with pytest.raises(ValueError, match="pass the wiring of the run's own config"):
        energy_by_cost_model({**metrics, "energy_pj_layers": {"x": 1.0}}, run_wiring(metrics["config"]))
    json.dumps(energy_by_cost_model(metrics, run_wiring(metrics["config"])))  # JSON-ready
