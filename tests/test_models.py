"""Registered models: the layer lists of spec §9, ψ totals against MAC counts, bad input."""
import pytest
import torch
from torch import nn

from pipeline.models import MODELS, create_model, input_shape
from pipeline.neuron import neurons

SPEC_LAYERS = {  # spiking layers of spec §9 at width 1
    "cnn7": [(64, 15, 15), (128, 13, 13), (256, 8, 8), (128, 6, 6), (64, 6, 6), (10, 6, 6)],
    "cnn7_printed": [(64, 15, 15), (128, 10, 10), (256, 8, 8), (128, 6, 6), (64, 6, 6), (10, 6, 6)],
    "vgg11": [(64, 32, 32), (128, 16, 16), (256, 16, 16), (512, 8, 8), (512, 8, 8),
              (512, 4, 4), (512, 2, 2), (512, 2, 2), (4096,), (4096,)],
    "resnet18": None,  # 20 layers, checked below
}


def _resnet_layers():
    shapes = []
    for c, size, down in [(64, 32, False), (64, 32, False), (128, 16, True), (128, 16, False),
                          (256, 8, True), (256, 8, False), (512, 4, True), (512, 4, False)]:
        c_in, s_in = (c // 2, size * 2) if down else (c, size)
        shapes += [(c_in, s_in, s_in), (c, size, size)] + ([(c_in, s_in, s_in)] if down else [])
    return shapes + [(512, 4, 4)]


@pytest.fixture(scope="module")
def built():
    torch.manual_seed(0)
    return {name: create_model(name) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_spiking_layers_match_spec(built, name):
    expected = SPEC_LAYERS[name] or _resnet_layers()
    shapes = [tuple(m.psi.shape) for _, m in neurons(built[name])]
    assert sorted(shapes) == sorted(expected) and len(shapes) == len(expected)
    if name == "resnet18":
        assert len(shapes) == 20


def _consumers(model):
    """For each neuron: the next conv/linear in registration order and the pool area before it."""
    result, pending, area = {}, [], 1
    for name, m in model.named_modules():
        if hasattr(m, "psi") and not isinstance(m, (nn.Conv2d, nn.Linear)) and m.psi is not None:
            pending, area = [name], 1
        elif isinstance(m, nn.AvgPool2d):
            area *= m.kernel_size ** 2
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and pending:
            result[pending.pop()] = (m, area)
    return result


@pytest.mark.parametrize("name", MODELS)
def test_padded_psi_totals_equal_consumer_macs(built, name):
    model = built[name]
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o: shapes.__setitem__(mod, (i[0].shape, o.shape)))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()(torch.zeros(1, *input_shape(name)))
    for h in hooks:
        h.remove()
    consumers = _consumers(model)
    assert len(consumers) == len(neurons(model))
    for layer_name, layer in neurons(model):
        conv, area = consumers[layer_name]
        out = shapes[conv][1]
        if isinstance(conv, nn.Linear):
            macs = conv.in_features * conv.out_features
        else:
            k = conv.kernel_size[0] * conv.kernel_size[1]
            macs = conv.in_channels // conv.groups * conv.out_channels * k * out[-1] * out[-2]
        assert float(layer.psi.sum()) == area * macs, layer_name


def test_eq6_uniform_psi_where_it_applies(built):
    # VGG11 spike2 (128×16×16) feeds C(256)k3s1p1 with no pool: ψ = C_{l+1}·k² everywhere.
    psi = dict(neurons(built["vgg11"]))["spike2"].psi
    assert torch.all(psi == 256 * 9)
    # FC: ψ = C_{l+1}
    assert torch.all(dict(neurons(built["vgg11"]))["spike9"].psi == 4096)


@pytest.mark.parametrize("name", MODELS)
def test_forward_and_width(name):
    model = create_model(name, width=0.125, num_classes=7)
    assert model(torch.randn(2, *input_shape(name))).shape == (2, 7)
    assert all(m.spikes is not None and m.spikes.shape[1:] == m.psi.shape for _, m in neurons(model))
    assert not any(getattr(m, "bias", None) is not None for m in model.modules()
                   if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="unknown model 'lenet'; allowed: cnn7, cnn7_printed, vgg11, resnet18"):
        create_model("lenet")
    for width in (0, -1.0, float("nan"), float("inf"), 1e6):
        with pytest.raises(ValueError, match=rf"^width must be > 0 and <= 64 \(got {width}\)$"):
            create_model("cnn7", width=width)
    for classes in (0, -5, 10**6):
        with pytest.raises(ValueError, match=rf"^num_classes must be an integer from 1 to 100000 \(got {classes}\)$"):
            create_model("vgg11", num_classes=classes)
    # CNN7 needs 3×3 before conv4: conv3 (k6) input 8, conv2 input 10, conv1 (k3 s2) input 21.
    with pytest.raises(ValueError, match="input size 16 is too small for cnn7; minimum is 21"):
        create_model("cnn7", input_size=16)
    with pytest.raises(ValueError, match="unknown surrogate"):
        create_model("cnn7", surrogate="tanh")
