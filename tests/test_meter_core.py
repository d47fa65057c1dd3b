"""pipeline/anysnn.py without any peer library: bad input is refused in one line (a ValueError)
before any work."""
import pytest
import torch
from torch import nn

from pipeline.anysnn import MeterError, SynapticEnergy
from pipeline.neuron import Neuron, Spike


# --- bad input: one line, before any work -------------------------------------------------------

def _one_line_error(fn, match: str) -> str:
    with pytest.raises(MeterError, match=match) as info:
        fn()
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    return str(info.value)


def test_no_spiking_layer_is_refused():
    _one_line_error(lambda: SynapticEnergy(nn.Sequential(nn.Linear(3, 2)), (1, 3)), "no recognisable spiking layer")


class _Halves(Neuron):
    def fire(self, u):
        return u.clamp(min=0) * 0.5 + 0.25


class _Negative(Neuron):
    def fire(self, u):
        return -torch.ones_like(u)


@pytest.mark.parametrize("kind", [_Halves, _Negative])
def test_output_that_is_not_a_spike_count_is_refused(kind):
    model = nn.Sequential(nn.Linear(3, 4), kind(), nn.Linear(4, 2))
    message = _one_line_error(lambda: SynapticEnergy(model, (1, 3)), "not a spike count")
    assert "'1'" in message and kind.__name__ in message


def test_input_shape_that_does_not_fit_is_refused():
    model = nn.Sequential(nn.Linear(3, 4), Spike(), nn.Linear(4, 2))
    _one_line_error(lambda: SynapticEnergy(model, (1, 5)), r"input shape \(1, 5\) does not fit the model")


def test_zero_steps_or_axes_are_refused():
    model = nn.Sequential(nn.Linear(3, 4), Spike(), nn.Linear(4, 2))
    _one_line_error(lambda: SynapticEnergy(model, (0, 1, 3)), "ints >= 1")
    meter = SynapticEnergy(model, (1, 3))
    _one_line_error(lambda: meter.omega_all_firing(0), "T must be an int >= 1")
    assert meter.omega_all_firing(3) == 3 * 2 * 4
    _one_line_error(meter.energy_pj, "no spikes recorded")


def test_layer_that_cannot_be_counted_is_refused_by_name():
    model = nn.Sequential(nn.Linear(3, 4), Spike(), nn.Tanh(), nn.Linear(4, 2))
    _one_line_error(lambda: SynapticEnergy(model, (1, 3)), r"layer '2' \(Tanh\)")

