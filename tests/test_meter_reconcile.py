"""Our synaptic events beside spikingjelly's SynOpCounter, NeuroBench's SynapticOperations and
sinabs' synops hooks on the same network and input: equal where they count the same thing, and
each difference exactly the named one (zero padding, first layer, pooling, multiplicity, zero
weights). See bench/meter_reconcile.py and docs/own-snn.md."""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("spikingjelly")  # a peer: requirements-peers.txt
pytest.importorskip("sinabs")  # a peer: requirements-peers.txt
pytest.importorskip("neurobench")  # a peer: requirements-peers.txt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from meter_reconcile import (jelly_net, neurobench_counts, ours_counts, sinabs_counts,  # noqa: E402
                             sinabs_net, spikingjelly_counts)

B, T = 3, 2
SHAPE = (T, 1, 1, 8, 8)


@pytest.fixture()
def x():
    torch.manual_seed(0)
    return torch.rand(T, B, 1, 8, 8) * 3


def _spikes_of(net, x, index):
    out = {}
    handle = net[index].register_forward_hook(lambda m, i, o: out.setdefault("s", o))
    try:
        spikingjelly_counts(net, x, B)  # any clean forward pass
    finally:
        handle.remove()
    return out["s"]


def test_spikingjelly_equals_ours_but_for_max_pooling(x):
    torch.manual_seed(1)
    net = jelly_net("max")
    ours, jelly = ours_counts(net, SHAPE, x, "exact"), spikingjelly_counts(net, x, B)
    assert ours["1"] > 0 and ours["3"] > 0
    assert jelly["0"] == 0  # the first layer reads the image: not spike-driven, as for us
    assert jelly["2"] == ours["1"]  # conv2 reads the spikes of layer 1: the same events
    s = _spikes_of(net, x, 3)  # [T, B, 6, 8, 8]
    pooled = F.max_pool2d(s.flatten(0, 1), 2)  # what the linear layer reads: the OR of each window
    assert jelly["6"] == pytest.approx(10 * float(pooled.sum()) / B)
    # pooling: we charge every spike in a window the pooled unit's 10 synapses
    assert ours["3"] - jelly["6"] == pytest.approx(10 * float(s.sum() - pooled.sum()) / B)
    assert ours["total"] - jelly["total"] == pytest.approx(10 * float(s.sum() - pooled.sum()) / B)


def test_zero_padding_is_the_padded_convention(x):
    torch.manual_seed(1)
    net = jelly_net("max")
    exact, padded = ours_counts(net, SHAPE, x, "exact"), ours_counts(net, SHAPE, x, "padded")
    assert padded["1"] > exact["1"]  # conv2 (k3, p1) has padded taps
    assert padded["3"] == exact["3"]  # max pool + linear: no padding


def test_neurobench_acs_and_macs(x):
    torch.manual_seed(1)
    net = jelly_net("max")
    ours = ours_counts(net, SHAPE, x, "exact")
    jelly, nb = spikingjelly_counts(net, x, B), neurobench_counts(net, x, B)
    assert nb["Effective_ACs"] == pytest.approx(jelly["total"])  # binary inputs, real taps, no bias
    # the first layer: NeuroBench's MACs = non-zero pixels × weights = our dense MACs (no zero pixel)
    assert bool((x != 0).all())
    assert nb["Effective_MACs"] == pytest.approx(ours["dense_macs"]) == T * 4 * 22 ** 2
    # zero weights: NeuroBench skips them; silencing one of conv2's 6 output channels removes 1/6
    with torch.no_grad():
        net[2].weight[0] = 0
    jelly, nb = spikingjelly_counts(net, x, B), neurobench_counts(net, x, B)
    assert nb["Effective_ACs"] == pytest.approx(jelly["total"] - jelly["2"] / 6)


def test_average_pooling(x):
    torch.manual_seed(2)
    net = jelly_net("avg")
    ours, jelly, nb = ours_counts(net, SHAPE, x, "exact"), spikingjelly_counts(net, x, B), neurobench_counts(net, x, B)
    s = _spikes_of(net, x, 3)
    assert ours["3"] == pytest.approx(10 * float(s.sum()) / B) and ours["3"] > 0 # the pool's sum reaches the 10 synapses
    assert jelly["6"] == 0  # non-binary input after an average pool: not counted
    assert jelly["total"] == ours["1"] == pytest.approx(nb["Effective_ACs"])
    assert nb["Effective_MACs"] > T * 4 * 22 ** 2  # the linear layer's non-zero pooled inputs become MACs


def test_sinabs_hooks_and_multiplicity():
    torch.manual_seed(3)
    net = sinabs_net(T)
    xs = (torch.rand(B, 1, 1, 8, 8) * 6).expand(B, T, 1, 8, 8).reshape(B * T, 1, 8, 8)
    ours = ours_counts(net, (T, 1, 8, 8), xs, "exact")
    sin, nb = sinabs_counts(net, xs, T), neurobench_counts(net, xs, B)
    s = {}
    handle = net[1].register_forward_hook(lambda m, i, o: s.setdefault("s", o))
    sinabs_counts(net, xs, T)
    handle.remove()
    assert float(s["s"].max()) > 1  # multi-spike
    # sinabs counts k·fan-out of real taps, as we do; its first layer is Σ pixel value × fan-out
    assert sin["total"] - sin["0"] == pytest.approx(ours["total"], rel=1e-6)
    assert sin["3"] == pytest.approx(ours["1"], rel=1e-6) and sin["6"] == pytest.approx(ours["4"], rel=1e-6)
    # NeuroBench: multi-spike input is not binary -> MACs, each k counted once; no ACs at all
    assert nb["Effective_ACs"] == 0
    assert ours["dense_macs"] < nb["Effective_MACs"] < ours["dense_macs"] + ours["total"]
