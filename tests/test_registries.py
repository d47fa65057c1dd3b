"""Every registered model × surrogate × penalty × ψ convention, at a small size; the house rules."""
import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from pipeline.models import MODELS, create_model, input_shape
from pipeline.neuron import SURROGATES, neurons
from pipeline.penalties import PENALTIES, batch_penalty, label, omega_all_firing
from pipeline.runs.store import training_code
from pipeline.synapses import PSI_CONVENTIONS

ROOT = Path(__file__).resolve().parents[1]


def _brute_omega(spikes, psi, kind, p):
    """Ω written out per neuron from the paper's weights: ψ (Eq. 14), 1 (Eq. 18), 1/d_l (Eq. 19)."""
    total = torch.zeros(spikes[0].shape[0], dtype=torch.float64)
    for s, w in zip(spikes, psi):
        weight = {"syn": w.double(), "total": torch.ones_like(w, dtype=torch.float64),
                  "balance": torch.full_like(w, 1 / w.numel(), dtype=torch.float64)}[kind]
        total += (weight * s.double() ** p).flatten(1).sum(1) / p
    return total.mean()


@pytest.mark.parametrize("psi", PSI_CONVENTIONS)
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_with_every_surrogate_and_penalty(name, surrogate, psi):
    torch.manual_seed(0)
    shape = input_shape(name)
    model = create_model(name, in_channels=shape[0], width=1 / 16, surrogate=surrogate, psi=psi)
    x, y = torch.randn(2, *shape) * 3, torch.tensor([1, 2])
    for kind in PENALTIES:
        for p in (1, 2):
            model.zero_grad()
            out = model(x)
            named = neurons(model)
            penalty = batch_penalty(model, kind, p)
            spikes, weights = [m.spikes for _, m in named], [m.psi for _, m in named]
            assert penalty.item() == pytest.approx(_brute_omega(spikes, weights, kind, p).item(), rel=1e-5)
            all_ones = [torch.ones(1, *w.shape) for w in weights]
            assert omega_all_firing(weights, kind, p) == pytest.approx(
                _brute_omega(all_ones, weights, kind, p).item(), rel=1e-9)
            (F.cross_entropy(out, y) + penalty).backward()
            grads = [q.grad for q in model.parameters() if q.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)


def test_labels_come_from_the_registry_and_are_distinct():
    labels = [label(k, p) for k in PENALTIES for p in (1, 2)]
    assert len(set(labels)) == len(labels) and label("syn", 1) == "Ω_syn p=1"
    assert all(PENALTIES[k].equation.startswith("Eq. ") for k in PENALTIES)


def test_no_core_module_imports_the_run_machinery():
    for path in (ROOT / "pipeline").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith("pipeline.runs")], path.name


def test_training_code_is_what_train_imports_and_every_training_stage_depends_on_it():
    names = {p.name for p in training_code()}
    assert {"train.py", "neuron.py", "penalties.py", "checkpoint.py", "rundir.py", "machine.py"} <= names  # machine: `from pipeline import machine`
    assert not {"scoring.py", "figures.py", "convert.py"} & names
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("tune_wd", "train", "grid", "ann2snn"):
        deps = stages[stage]["do"]["deps"]
        for path in training_code():
            relative = path.relative_to(ROOT)
            assert any(relative == Path(d) or Path(d) in relative.parents for d in deps), (stage, relative)


def test_run_products_are_named_in_one_module():
    spelled = {}
    for path in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "stages").glob("*.py")]:
        for name in ("checkpoint.pt", "metrics.json", "history.csv", "model.pt", "split.json"):
            if any(f'"{name}"' in line and "results /" not in line for line in path.read_text().splitlines()):
                spelled.setdefault(name, []).append(path.name)
    assert all(places == ["rundir.py"] for places in spelled.values()), spelled


def test_every_stage_is_defined_once_for_every_item():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert dvc["vars"][0]["profiles"][0] == "default"
    for name, stage in dvc["stages"].items():
        assert stage["foreach"] == "${profiles}", name  # one definition, no per-profile copy
        assert stage["do"]["cmd"] == f"python stages/{name}.py ${{item}}", name
    assert all(Path(ROOT / "profiles" / f"{item}.yaml").is_file() for item in dvc["vars"][0]["profiles"])
    assert dvc["metrics"] == ["results/default/metrics.json"]  # what `dvc exp show` compares
