"""ANN→SNN conversion (spec §7): BN folding, IF dynamics, exact and limiting equivalences, energy."""
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline.convert import (CONVERSION_NEURONS, ENCODINGS, IFNeuron, MultiSpikeIF, evaluate_ann,
                              evaluate_converted, fold_bn, run_if_snn, to_if_snn)
from pipeline.energy import E_AC_PJ
from pipeline.models import create_model, input_shape
from pipeline.neuron import Neuron, QReLU, Spike, neurons
from pipeline.penalties import batch_penalty
from pipeline.runs.experiments import evaluate_trained
from pipeline.synapses import attach_psi, synapse_counts

ARCHS = ["cnn7", "vgg11", "resnet18"]
WIDTH = 1 / 16


class Clip(Neuron):
    """clip(u, 0, 1): the rate an IF neuron approaches under a constant current u."""

    def fire(self, u):
        return u.clamp(0, 1)


def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]


def qrelu_net(name, seed=0):
    torch.manual_seed(seed)
    return create_model(name, width=WIDTH, neuron=QReLU).double().eval()


def images(name, n=4, seed=1):
    return torch.rand(n, *input_shape(name), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in batchnorms(model):
            c = bn.num_features
            bn.running_mean.copy_(torch.randn(c, generator=g))
            bn.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.2)
            bn.weight.copy_(torch.randn(c, generator=g))
            bn.bias.copy_(torch.randn(c, generator=g) + 1)
    return model


def calibrate_bn(model, x, low, high, gain=0.5, seed=0):
    """Set each BN so that on `x` its output lies in (low − gain, high + gain) per unit.

    Running stats become each channel's mean and largest deviation (so the
    normalised input is in [−1, 1]); γ = gain, β ~ U(low, high) per channel.
    """
    g = torch.Generator().manual_seed(seed)
    for bn in batchnorms(model):  # registration order: every upstream BN is set first
        seen = []
        handle = bn.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
        with torch.no_grad():
            model(x)
        handle.remove()
        dims = [0, *range(2, seen[0].dim())]
        mean = seen[0].mean(dims, keepdim=True)
        deviation = (seen[0] - mean).abs().amax(dims)
        with torch.no_grad():
            bn.running_mean.copy_(mean.flatten())
            bn.running_var.copy_(deviation.square() + 1e-12)
            bn.weight.fill_(gain)
            bn.bias.copy_(torch.rand(bn.num_features, generator=g, dtype=x.dtype) * (high - low) + low)
    return model


def activations(model, x):
    with torch.no_grad():
        logits = model(x)
    return logits, [m.spikes for _, m in neurons(model)]


def twin(name, ann, neuron):
    """`ann`'s architecture and weights with every neuron layer built by `neuron`."""
    net = create_model(name, width=WIDTH, neuron=neuron).double().eval()
    net.load_state_dict(ann.state_dict())
    return net


def mlp(weights, shifts):
    """[Linear – BN1d – QReLU] per hidden layer, then Linear; float64, ψ attached.

    Each BN has γ/σ = 1 exactly (γ = 2, running_var = 4, ε = 0) and β = shift,
    so the pre-activation is W·a + shift.
    """
    layers = []
    for w, shift in zip(weights, shifts):
        bn = nn.BatchNorm1d(w.shape[0], eps=0.0)
        with torch.no_grad():
            bn.running_var.fill_(4.0)
            bn.weight.fill_(2.0)
            bn.bias.copy_(shift)
        layers += [nn.Linear(w.shape[1], w.shape[0], bias=False), bn, QReLU()]
    layers.append(nn.Linear(weights[-1].shape[1], weights[-1].shape[0], bias=False))
    net = nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        for linear, w in zip([m for m in net if isinstance(m, nn.Linear)], weights):
            linear.weight.copy_(w)
    attach_psi(net, (weights[0].shape[1],))
    return net


def test_qrelu_syn_penalty_is_psi_weighted_activation():
    ann = qrelu_net("cnn7")
    randomise_bn(ann)
    x = images("cnn7")
    _, acts = activations(ann, x)
    assert max(a.max() for a in acts) >= 2  # multi-spike counts, not just 0/1
    by_hand = sum((m.psi * a).flatten(1).sum(1) for (_, m), a in zip(neurons(ann), acts)).mean()
    torch.testing.assert_close(batch_penalty(ann, "syn", 1), by_hand)


@pytest.mark.parametrize("name,folded,kept", [("cnn7", 6, 0), ("vgg11", 10, 0), ("resnet18", 8, 12)])
def test_fold_bn_keeps_outputs(name, folded, kept):
    ann = randomise_bn(qrelu_net(name)).train()
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    folded_net = fold_bn(ann)
    x = images(name)
    logits, acts = activations(ann.eval(), x)
    folded_logits, folded_acts = activations(folded_net, x)
    torch.testing.assert_close(folded_logits, logits)
    for a, b in zip(folded_acts, acts):
        torch.testing.assert_close(a, b)
    assert len(batchnorms(folded_net)) == kept  # ResNet: block-input and final BNs follow a sum
    assert len(batchnorms(ann)) - kept == folded
    assert all(torch.equal(v, before[k]) for k, v in ann.state_dict().items())  # the original is untouched


@pytest.mark.parametrize("neuron,kind", [("multi", MultiSpikeIF), ("single", IFNeuron), (None, MultiSpikeIF)])
def test_to_if_snn_swaps_neurons_and_carries_psi(neuron, kind):
    ann = qrelu_net("resnet18")
    snn = to_if_snn(ann) if neuron is None else to_if_snn(ann, neuron=neuron)  # None: the default
    assert all(type(m) is kind for _, m in neurons(snn))
    assert all(isinstance(m, QReLU) for _, m in neurons(ann))
    recounted = synapse_counts(snn, input_shape("resnet18"))
    for (name, m), (_, q) in zip(neurons(snn), neurons(ann)):
        assert torch.equal(m.psi, q.psi) and torch.equal(recounted[name], q.psi)


def test_if_neuron_hand_worked():
    neuron = IFNeuron()
    currents = [0.6, 0.6, 0.6, 2.5, -3.0, 0.5]
    # v: 0.6 | 1.2→0.2 | 0.8 | 3.3→2.3 | −0.7 | −0.2
    spikes = [neuron(torch.tensor([i], dtype=torch.float64)).item() for i in currents]
    assert spikes == [0, 1, 0, 1, 0, 0]
    assert neuron.count.item() == 2
    torch.testing.assert_close(neuron.v, torch.tensor([-0.2], dtype=torch.float64))
    neuron.reset()
    assert neuron(torch.tensor([0.6])).item() == 0 and neuron.count.item() == 0


def test_one_hidden_layer_counts_are_exact():
    # Constant current I into the hidden layer: count over T steps = clip(floor(T·I), 0, T),
    # so count/T is within 1/T of clip(I, 0, 1); the logits are W2 · count exactly.
    g = torch.Generator().manual_seed(0)
    shapes = [(40, 6), (3, 40), (40,), (5, 6)]
    w1, w2, shift, x = (torch.randn(*shape, generator=g, dtype=torch.float64) for shape in shapes)
    net = mlp([w1, w2], [shift])
    current = x @ w1.T + shift
    snn = to_if_snn(net, neuron="single")
    for T in (1, 5, 10, 37):
        logits, (counts,) = run_if_snn(snn, x, T, encoding="repeat")
        assert torch.equal(counts, torch.floor(T * current).clamp(0, T))
        assert ((counts / T - current.clamp(0, 1)).abs() < 1 / T).all()
        torch.testing.assert_close(logits, counts @ w2.T)


def test_binary_regime_matches_ann_at_every_T():
    # A Boolean net: inputs in {0, 1}, integer weights, every pre-activation in {−1, 0, 1}.
    # A unit then either fires at every step (I = 1) or never (I ≤ 0), so each layer's
    # current is constant in time and equals the ANN's: count/T = QReLU activation exactly.
    w1 = torch.tensor([[1, 1, 0], [0, 1, -1], [1, -1, 0], [-1, 0, 1]], dtype=torch.float64)
    w2 = torch.tensor([[1, 0, -1, 0], [0, 1, 0, 1]], dtype=torch.float64)
    w3 = torch.tensor([[1, -1], [2, 1]], dtype=torch.float64)
    net = mlp([w1, w2, w3], [torch.tensor([-1.0, 0, 0, 0]), torch.tensor([0.0, -1])])
    x = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * 3)
    logits, acts = activations(net, x)
    assert all(set(a.unique().tolist()) == {0.0, 1.0} for a in acts)
    snn = to_if_snn(net, neuron="single")
    for T in (1, 2, 5, 10):
        snn_logits, counts = run_if_snn(snn, x, T, encoding="repeat")
        assert all(torch.equal(c, T * a) for c, a in zip(counts, acts))
        torch.testing.assert_close(snn_logits, T * logits)


@pytest.mark.parametrize("name", ARCHS)
def test_t1_equals_ann_when_activations_are_0_or_1(name):
    x = images(name)
    ann = calibrate_bn(qrelu_net(name), x, low=0.6, high=1.4)  # pre-activations in (0.1, 1.9)
    logits, acts = activations(ann, x)
    assert all(set(a.unique().tolist()) == {0.0, 1.0} for a in acts)  # precondition, non-trivial
    snn_logits, counts = run_if_snn(to_if_snn(ann, neuron="single"), x, 1)
    assert all(torch.equal(c, a) for c, a in zip(counts, acts))
    torch.testing.assert_close(snn_logits, logits)


@pytest.mark.parametrize("name", ARCHS)
def test_t1_is_the_single_step_snn(name):
    # At T = 1, v = I and s = H(I − 1): the paper's single-step SNN with the same weights.
    ann = randomise_bn(qrelu_net(name))
    x = images(name)
    logits, spikes = activations(twin(name, ann, Spike), x)
    snn_logits, counts = run_if_snn(to_if_snn(ann, neuron="single"), x, 1)
    assert all(torch.equal(c, s) for c, s in zip(counts, spikes))
    torch.testing.assert_close(snn_logits, logits)


def test_rates_approach_clipped_relu_on_deeper_net():
    # Deeper layers see time-varying currents, but with bounded currents and no leak still
    # count/T → clip(mean current, 0, 1); by induction over layers the IF rates approach the
    # clip(·, 0, 1) network with the same weights (error ~1/T), not the QReLU ANN: units with
    # pre-activation in (0, 1) fire although QReLU says 0.
    x = images("cnn7", n=2)
    ann = calibrate_bn(qrelu_net("cnn7"), x, low=-0.5, high=1.5)  # pre-activations in (−1, 2)
    _, rates = activations(twin("cnn7", ann, Clip), x)
    _, acts = activations(ann, x)
    snn = to_if_snn(ann, neuron="single")
    errors = []
    for T in (4, 16, 64, 256):
        _, counts = run_if_snn(snn, x, T, encoding="repeat")
        errors.append(max(float((c / T - r).abs().mean()) for c, r in zip(counts, rates)))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.05 * errors[0]
    assert min(float((c / 256 - a).abs().mean()) for c, a in zip(counts, acts)) > 0.1


def test_energy_at_t1_is_the_psi_weighted_spike_count():
    ann = randomise_bn(qrelu_net("cnn7"))
    batches = [images("cnn7", n=3, seed=s) for s in (1, 2)]
    loader = [(x, torch.tensor([0, 1, 2])) for x in batches]
    single = twin("cnn7", ann, Spike)
    events, correct, spikes, units = 0.0, 0, 0.0, 0
    for x, y in loader:
        logits, layers = activations(single, x)
        correct += int((logits.argmax(1) == y).sum())
        for (_, m), s in zip(neurons(single), layers):
            events += float((m.psi * s).sum())
            spikes += float(s.sum())
            units += s[0].numel()
    result = evaluate_converted(ann, loader, T=1, neuron="single")
    assert result["energy_pj"] == pytest.approx(E_AC_PJ * events / 6, rel=1e-9)
    assert result["test_accuracy"] == correct / 6
    assert result["rate_mean"] == pytest.approx(spikes / (6 * units / 2), rel=1e-9)
    assert result["T"] == 1 and 0 <= result["dead_rate"] <= 1


@pytest.mark.parametrize("neuron", CONVERSION_NEURONS)
def test_more_steps_never_lower_energy_when_repeating(neuron):
    # Under `repeat` the first T steps of a 2T-step run are the T-step run: counts, hence energy, only grow.
    ann = randomise_bn(qrelu_net("resnet18"))
    x = images("resnet18", n=2)
    loader = [(x, torch.tensor([0, 1]))]
    snn = to_if_snn(ann, neuron=neuron)
    energies = [evaluate_converted(ann, loader, T, neuron=neuron, encoding="repeat")["energy_pj"]
                for T in (1, 2, 4, 8)]
    assert energies == sorted(energies) and energies[-1] > energies[0]
    _, short = run_if_snn(snn, x, 4, encoding="repeat")
    _, long = run_if_snn(snn, x, 8, encoding="repeat")
    assert all((b >= a).all() for a, b in zip(short, long))


class NeverRead:
    def __iter__(self):
        raise AssertionError("the loader was read before the input was checked")


class FunctionalReLU(nn.Module):
    def forward(self, x):
        return torch.relu(x)


@pytest.mark.parametrize("bad,message", [
    (lambda: create_model("cnn7", width=WIDTH), r"layer 'spike1' \(Spike\)"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU()), r"layer '1' \(ReLU\)"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), QReLU()), r"layer '1' \(MaxPool2d\)"),
    (lambda: nn.Sequential(nn.Linear(3, 3), FunctionalReLU()), r"operation 'relu'"),
])
def test_unsupported_layers_are_named(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        evaluate_converted(bad(), NeverRead(), T=5)
    assert "\n" not in str(err.value)


def test_bad_input():
    ann = qrelu_net("cnn7")
    with pytest.raises(ValueError, match=r"^T must be >= 1 \(got 0\)$"):
        evaluate_converted(ann, NeverRead(), T=0)
    with pytest.raises(ValueError, match=r"^T must be >= 1 \(got 0\)$"):
        run_if_snn(to_if_snn(ann), images("cnn7"), 0)
    with pytest.raises(ValueError, match="'spike1' is not an IFNeuron; convert the ANN with to_if_snn"):
        run_if_snn(ann, images("cnn7"), 1)
    with pytest.raises(ValueError, match="'spike1' has no psi"):
        evaluate_converted(create_model("cnn7", width=WIDTH, neuron=QReLU, psi=None), NeverRead(), T=1)


# ---- multi-spike neurons and input encodings (issue 12) ----

class Recorded(list):
    """The tensors a hook saw, one per call (time step); `stop()` removes the hook."""

    def __init__(self, handle_from):
        super().__init__()
        self.handle = handle_from(self)

    def stop(self):
        self.handle.remove()


def per_step_outputs(module):
    """Record each call's output of `module` (one entry per time step)."""
    return Recorded(lambda seen: module.register_forward_hook(lambda m, i, out: seen.append(out.clone())))


def per_step_inputs(module):
    """Record each call's input of `module` (one entry per time step)."""
    return Recorded(lambda seen: module.register_forward_pre_hook(lambda m, i: seen.append(i[0].clone())))


def trained_cnn7(steps=40, seed=0):
    """A tiny float32 CNN7 QReLU ANN after a few Adam steps on random data (BN running stats moved)."""
    torch.manual_seed(seed)
    model = create_model("cnn7", width=WIDTH, neuron=QReLU)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(64, *input_shape("cnn7"), generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        batch = slice(16 * (step % 4), 16 * (step % 4 + 1))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return model.eval(), x, y


def test_multi_spike_neuron_hand_worked():
    neuron = MultiSpikeIF()
    currents = [2.5, -3.0, 1.25, 4.0, 0.25]
    # v: 2.5 → 2 spikes, 0.5 | −2.5 → 0 (no negative spikes) | −1.25 → 0 | 2.75 → 2, 0.75 | 1.0 → 1, 0
    spikes = [neuron(torch.tensor([i], dtype=torch.float64)).item() for i in currents]
    assert spikes == [2, 0, 0, 2, 1]
    assert neuron.count.item() == 5 and neuron.v.item() == 0.0
    neuron.reset()
    assert neuron(torch.tensor([0.999])).item() == 0 and neuron(torch.tensor([7.0])).item() == 7


def three_neuron_net():
    """Linear(1→3) – QReLU – Linear(3→2), dyadic numbers so every step is exact in float64.

    With x = 5 the pre-activations are u = 5·w + b = [3.75, 0.625, −1.25], the QReLU
    activations [3, 0, 0]; every constant divides exactly by T = 2 and T = 5.
    """
    net = nn.Sequential(nn.Linear(1, 3), QReLU(), nn.Linear(3, 2)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5], [0.25], [-0.5]]))
        net[0].bias.copy_(torch.tensor([1.25, -0.625, 1.25]))
        net[2].weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]))
        net[2].bias.copy_(torch.tensor([2.5, -5.0]))
    return net, torch.tensor([[5.0]], dtype=torch.float64)


# Per-step spikes of the three neurons, worked by hand (v ← v + I; k = ⌊max(v, 0)⌋; v ← v − k):
HAND_WORKED = {
    # T = 1: I = u = [3.75, 0.625, −1.25] → [3, 0, 0], the QReLU activations.
    (1, "repeat"): [[3, 0, 0]],
    (1, "spread"): [[3, 0, 0]],
    # repeat, T = 2: I = u each step. n1: 3.75 → 3 (0.75), 4.5 → 4 (0.5); n2: 0.625 → 0, 1.25 → 1 (0.25).
    (2, "repeat"): [[3, 0, 0], [4, 1, 0]],
    # spread, T = 2: I = 2.5·w + b/2 = [1.875, 0.3125, −0.625]. n1: 1.875 → 1 (0.875), 2.75 → 2 (0.75);
    # n2: 0.3125, 0.625 → never; total [3, 0, 0] = ⌊u⌋.
    (2, "spread"): [[1, 0, 0], [2, 0, 0]],
    # repeat, T = 5. n1: 3.75→3 (.75), 4.5→4 (.5), 4.25→4 (.25), 4→4 (0), 3.75→3 (.75): 18 = ⌊5·3.75⌋;
    # n2: .625→0, 1.25→1 (.25), .875→0, 1.5→1 (.5), 1.125→1 (.125): 3 = ⌊5·0.625⌋.
    (5, "repeat"): [[3, 0, 0], [4, 1, 0], [4, 0, 0], [4, 1, 0], [3, 1, 0]],
    # spread, T = 5: I = 1·w + b/5 = [0.75, 0.125, −0.25]. n1: .75→0, 1.5→1 (.5), 1.25→1 (.25), 1→1 (0),
    # .75→0: total 3 = ⌊3.75⌋; n2: .125, .25, .375, .5, .625 → never.
    (5, "spread"): [[0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]],
}
# Logits = Σ_t (W2·k_t + b2 / T under spread, + b2 under repeat), by hand from the totals:
HAND_LOGITS = {
    (1, "repeat"): [5.5, -8.0], (1, "spread"): [5.5, -8.0],     # W2·[3,0,0] = [3, −3]; + b2
    (2, "repeat"): [14.0, -16.5],                               # W2·[7,1,0] = [9, −6.5]; + 2·b2
    (2, "spread"): [5.5, -8.0],                                 # W2·[3,0,0] + b2 (b2 once)
    (5, "repeat"): [36.5, -41.5],                               # W2·[18,3,0] = [24, −16.5]; + 5·b2
    (5, "spread"): [5.5, -8.0],
}


@pytest.mark.parametrize("T,encoding", sorted(HAND_WORKED))
def test_three_neurons_hand_worked(T, encoding):
    net, x = three_neuron_net()
    snn = to_if_snn(net)
    steps = per_step_outputs(snn[1])
    logits, (counts,) = run_if_snn(snn, x, T, encoding=encoding)
    assert [s[0].tolist() for s in steps] == HAND_WORKED[T, encoding]
    assert counts[0].tolist() == [sum(col) for col in zip(*HAND_WORKED[T, encoding])]
    assert logits[0].tolist() == HAND_LOGITS[T, encoding]
    if encoding == "spread":  # the membrane keeps what the ANN's floor drops: v_T = u − ⌊u⌋ (or u where u < 0)
        assert snn[1].v[0].tolist() == [0.75, 0.625, -1.25]


@pytest.mark.parametrize("name", ARCHS)
def test_t1_multi_spike_is_the_qrelu_ann_bit_for_bit(name):
    # At T = 1, v = u and k = ⌊max(u, 0)⌋: the QReLU itself. Exact against the folded ANN (the same
    # weights, so the same float rounding); folding rounds W·γ/σ differently from the ANN's conv-then-BN,
    # which could in principle move a pre-activation across an integer — it does not on these inputs,
    # so the unfolded ANN matches bit for bit too.
    ann = randomise_bn(qrelu_net(name))
    x = images(name)
    logits, acts = activations(ann, x)
    folded_logits, folded_acts = activations(fold_bn(ann), x)
    assert max(a.max() for a in acts) >= 2  # multi-spike counts, not just 0/1
    for encoding in ENCODINGS:
        snn_logits, counts = run_if_snn(to_if_snn(ann), x, 1, encoding=encoding)
        assert torch.equal(snn_logits, folded_logits) and torch.equal(snn_logits, logits)
        assert all(torch.equal(c, a) for c, a in zip(counts, folded_acts))
        assert all(torch.equal(c, a) for c, a in zip(counts, acts))


def test_t1_multi_spike_is_the_trained_qrelu_ann_bit_for_bit():
    ann, x, y = trained_cnn7()
    logits, acts = activations(ann, x)
    folded_logits, folded_acts = activations(fold_bn(ann), x)
    assert max(a.max() for a in acts) >= 2 and all(a.sum() > 0 for a in acts)
    snn_logits, counts = run_if_snn(to_if_snn(ann), x, 1)
    assert torch.equal(snn_logits, folded_logits) and torch.equal(snn_logits, logits)
    assert all(torch.equal(c, a) for c, a in zip(counts, folded_acts))
    assert all(torch.equal(c, a) for c, a in zip(counts, acts))
    # evaluated alike: the same accuracy, and the same energy up to summation order
    loader = [(x[:32], y[:32]), (x[32:], y[32:])]
    ann_result = evaluate_ann(ann, loader)
    snn_result = evaluate_converted(ann, loader, T=1)
    by_hand = int((logits.argmax(1) == y).sum()) / len(y)
    assert snn_result["test_accuracy"] == ann_result["ann_test_accuracy"] == by_hand
    assert snn_result["energy_pj"] == pytest.approx(ann_result["ann_energy_pj"], rel=1e-6)


@pytest.mark.parametrize("name", ["cnn7", "resnet18"])  # ResNet18's first neuron follows a kept (unfoldable) BN
def test_spread_first_layer_counts_floor_of_summed_input(name):
    ann = randomise_bn(qrelu_net(name))
    x = images(name)
    pre_activation = per_step_inputs(neurons(ann)[0][1])
    activations(ann, x)
    snn = to_if_snn(ann)
    first = neurons(snn)[0][1]
    for T in (2, 5, 10):
        inputs = per_step_inputs(first)
        _, counts = run_if_snn(snn, x, T, encoding="spread")
        assert len(inputs) == T
        total = sum(inputs)
        torch.testing.assert_close(total, pre_activation[0])  # each constant counted once
        assert torch.equal(counts[0], total.clamp(min=0).floor())
        inputs.stop()
    assert counts[0].max() >= 2


def test_spread_biases_vs_image_only():
    # [Linear – BN – QReLU] × 2 – Linear: after folding each hidden layer has bias = shift. Spreading the
    # biases too makes every layer's input summed over the steps W·(counts below) + b, with b once (for the
    # first layer exactly the ANN pre-activation); spreading only the image adds each bias T times.
    g = torch.Generator().manual_seed(3)
    w1, w2, w3 = (torch.randn(*s, generator=g, dtype=torch.float64) for s in [(30, 6), (20, 30), (4, 20)])
    net = mlp([w1, w2, w3], [torch.randn(30, generator=g) + 1, torch.randn(20, generator=g)])
    shifts = [bn.bias.detach() for bn in batchnorms(net)]  # as stored (mlp sets β before casting to float64)
    x = torch.rand(5, 6, generator=g, dtype=torch.float64) * 4
    snn = to_if_snn(net)
    (_, n1), (_, n2) = neurons(snn)
    T = 5
    for image_only in (False, True):
        in1, in2 = per_step_inputs(n1), per_step_inputs(n2)
        if image_only:
            logits, (c1, c2) = run_if_snn(snn, x / T, T, encoding="repeat")
        else:
            logits, (c1, c2) = run_if_snn(snn, x, T, encoding="spread")
        bias_times = T if image_only else 1
        torch.testing.assert_close(sum(in1), x @ w1.T + bias_times * shifts[0])
        torch.testing.assert_close(sum(in2), c1 @ w2.T + bias_times * shifts[1])
        torch.testing.assert_close(logits, c2 @ w3.T)
        in1.stop()
        in2.stop()
        if not image_only:
            torch.testing.assert_close(sum(in1), x @ w1.T + shifts[0])  # the ANN's pre-activation
            assert torch.equal(c1, (x @ w1.T + shifts[0]).clamp(min=0).floor())
    assert (shifts[0] != 0).all()  # so the two runs above really differ


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_energy_counts_spikes_with_multiplicity(encoding):
    ann = randomise_bn(qrelu_net("vgg11"))
    batches = [images("vgg11", n=2, seed=s) for s in (1, 2)]
    loader = [(x, torch.tensor([3, 4])) for x in batches]
    T = 3
    snn = to_if_snn(ann)
    events, distinct, correct = 0.0, 0.0, 0
    for x, y in loader:
        steps = [per_step_outputs(m) for _, m in neurons(snn)]
        logits, counts = run_if_snn(snn, x, T, encoding=encoding)
        correct += int((logits.argmax(1) == y).sum())
        for (_, m), c, layer_steps in zip(neurons(snn), counts, steps):
            events += float((m.psi * c).sum())
            distinct += sum(float((m.psi * (k > 0)).sum()) for k in layer_steps)  # one event per firing neuron
            assert torch.equal(sum(layer_steps), c)
        for layer_steps in steps:
            layer_steps.stop()
    result = evaluate_converted(ann, loader, T, encoding=encoding)
    assert result["energy_pj"] == pytest.approx(E_AC_PJ * events / 4, rel=1e-9)
    assert result["energy_pj"] > E_AC_PJ * distinct / 4 * 1.01  # multiplicity matters here
    assert result["test_accuracy"] == correct / 4
    assert (result["T"], result["neuron"], result["encoding"]) == (T, "multi", encoding)


def test_evaluate_ann_accuracy_and_energy():
    ann = randomise_bn(qrelu_net("resnet18")).train()
    batches = [images("resnet18", n=3, seed=s) for s in (1, 2)]
    loader = [(x, torch.tensor([0, 1, 2])) for x in batches]
    events, correct = 0.0, 0
    for x, y in loader:
        logits, acts = activations(ann.eval(), x)
        correct += int((logits.argmax(1) == y).sum())
        events += sum(float((m.psi * a).sum()) for (_, m), a in zip(neurons(ann), acts))
    ann.train()
    result = evaluate_ann(ann, loader)
    assert ann.training  # mode restored
    assert result == {"ann_test_accuracy": correct / 6, "ann_energy_pj": pytest.approx(E_AC_PJ * events / 6, rel=1e-9)}
    assert result["ann_energy_pj"] == pytest.approx(evaluate_converted(ann, loader, T=1)["energy_pj"], rel=1e-9)


def test_bad_neuron_or_encoding():
    ann = qrelu_net("cnn7")
    snn = to_if_snn(ann)
    cases = [
        (lambda: evaluate_converted(ann, NeverRead(), T=2, neuron="lif"),
         r"^unknown conversion neuron 'lif'; allowed: multi, single$"),
        (lambda: evaluate_converted(ann, NeverRead(), T=2, encoding="poisson"),
         r"^unknown encoding 'poisson'; allowed: spread, repeat$"),
        (lambda: to_if_snn(ann, neuron="lif"), "unknown conversion neuron"),
        (lambda: run_if_snn(snn, images("cnn7"), 2, encoding="rate"), "unknown encoding 'rate'"),
        (lambda: evaluate_converted(ann, NeverRead(), T=0, neuron="lif"), r"^T must be >= 1 \(got 0\)$"),
        (lambda: evaluate_ann(create_model("cnn7", width=WIDTH, neuron=QReLU, psi=None), NeverRead()), "has no psi"),
    ]
    missing = Path("/nonexistent/run")  # the names are checked before the run directory is read
    cases += [(lambda: evaluate_trained(None, missing, [1, 5], neuron="lif"), "unknown conversion neuron"),
              (lambda: evaluate_trained(None, missing, [1], encoding="x"), "unknown encoding"),
              (lambda: evaluate_trained(None, missing, [0]), "T must be >= 1")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            call()
        assert "\n" not in str(err.value)
