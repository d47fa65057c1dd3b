"""bench/peers.py compares identical computations: the spikingjelly and snntorch
rebuilds of CNN7 match ours in logits, spikes, synaptic operations and gradients."""
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("spikingjelly")
pytest.importorskip("snntorch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from peers import agreement, build_nets, synops_ours, synops_spikingjelly, train_step  # noqa: E402

BATCH = 4


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    nets = build_nets(0.125)
    x, y = torch.randn(BATCH, 1, 32, 32) * 2, torch.randint(0, 10, (BATCH,))
    return nets, x, y


def test_same_logits_and_spikes(setup):
    nets, x, _ = setup
    result, _ = agreement(nets, x)
    assert set(result) == {"spikingjelly", "snntorch"}
    for a in result.values():
        assert a.identical, a
        assert len(a.spike_mismatches) == 6


def test_synops_match_psi_times_spikes(setup):
    nets, x, _ = setup
    ours, energy = synops_ours(nets["ours"], x)
    jelly, total = synops_spikingjelly(nets["spikingjelly"], x)
    assert sum(ours) > 0
    assert jelly == ours
    assert total == sum(ours)
    assert energy == pytest.approx(0.9 * total / BATCH)


def test_one_training_step_gives_our_gradients(setup):
    nets, x, y = setup
    grads = {}
    for name, net in nets.items():
        torch.manual_seed(1)  # the same dropout masks in every net
        train_step(net, torch.optim.Adam(net.module.parameters(), 1e-3), x, y)
        grads[name] = net.module.get_submodule("conv1").weight.grad
    assert grads["ours"].abs().sum() > 0
    for name in ("spikingjelly", "snntorch"):
        torch.testing.assert_close(grads[name], grads["ours"], msg=name)
