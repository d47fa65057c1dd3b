"""NIR export: a finished run, a VGG11 (pools folded into convs) and a spikingjelly network the meter
recognises, read back by snntorch's and sinabs' NIR importers, give our predictions on a batch
(logits within 1e-4: float32 sums in another order); the metadata survive a write and a read."""
import json

import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")  # a peer: requirements-peers.txt
snntorch = pytest.importorskip("snntorch")
pytest.importorskip("sinabs")
pytest.importorskip("spikingjelly")

from sinabs import activation as sa  # noqa: E402
from sinabs import layers as sl  # noqa: E402
from sinabs.nir import from_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

from pipeline.anysnn import SynapticEnergy  # noqa: E402
from pipeline.config import RunConfig  # noqa: E402
from pipeline.cost_models import COST_MODELS  # noqa: E402
from pipeline.data import load_datasets  # noqa: E402
from pipeline.models import create_model  # noqa: E402
from pipeline.nir_export import export_run, layer_metadata, main, to_nir  # noqa: E402
from pipeline.rundir import MODEL, SPLIT  # noqa: E402
from pipeline.run_energy import energy_by_cost_model, run_wiring  # noqa: E402
from pipeline.train import build_model, train_run  # noqa: E402

TOLERANCE = 1e-4
pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated")  # sinabs 3.1.3's from_nir


def snntorch_net(graph):
    """snntorch's importer; its IF becomes a Leaky built with init_hidden=False, whose (spike, membrane)
    tuple its own graph cannot pass on: with init_hidden=True it returns the spikes."""
    net = import_from_nir(graph)
    for m in net.modules():
        if isinstance(m, snntorch.Leaky):
            m.init_hidden = True
    return lambda x: net(x)[0].flatten(1)


def sinabs_net(graph, batch):
    """sinabs' importer; its IAF emits ⌊v/θ⌋ spikes per step by default (NIR's IF does not say how many):
    one spike at most, as the exported neuron, with SingleSpike."""
    net = from_nir(graph, batch_size=batch, num_timesteps=1)
    for m in net.modules():
        if isinstance(m, sl.StatefulLayer) and hasattr(m, "spike_fn"):
            m.spike_fn = sa.SingleSpike
    return lambda x: net(x)[0].flatten(1)


def assert_same_predictions(graph, x, reference, tmp_path):
    nir.write(tmp_path / "graph.nir", graph)
    read = nir.read(tmp_path / "graph.nir")
    for name, run in (("snntorch", snntorch_net(read)), ("sinabs", sinabs_net(read, len(x)))):
        with torch.no_grad():
            logits = run(x)
        assert torch.equal(logits.argmax(1), reference.argmax(1)), name
        torch.testing.assert_close(logits, reference, rtol=0, atol=TOLERANCE, msg=name)
    return read


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = RunConfig.from_dict(dict(dataset="digits", model="cnn7", width=0.25, limit_train=200, batch_size=50,
                                   epochs=1, penalty="syn", lam_norm=1.0, seed=0))
    return cfg, out, train_run(cfg, out)


def test_a_finished_run_exports_with_its_metadata_and_imports_with_its_predictions(run, tmp_path):
    cfg, out, metrics = run
    graph = export_run(out)
    model = build_model(cfg)
    model.load_state_dict(torch.load(out / MODEL, weights_only=True))
    model.eval()
    test = load_datasets(cfg.dataset, cfg.data_dir, split_file=out / SPLIT, randaugment=False).test
    x = torch.stack([test[i][0] for i in range(32)])
    with torch.no_grad():
        reference = model(x)
    read = assert_same_predictions(graph, x, reference, tmp_path)
    kinds = [type(n).__name__ for n in read.nodes.values()]
    assert kinds.count("IF") == 6 and kinds.count("Conv2d") == 7  # BN, dropout, GAP and flatten folded away
    energies = energy_by_cost_model(metrics, run_wiring(metrics["config"]))
    spike = read.nodes["spike3"].metadata
    assert spike["rate"] == pytest.approx(metrics["rate_layers"]["spike3"])
    assert spike["psi"]["sum"] == pytest.approx(float(model.spike3.psi.sum()))
    assert spike["psi"]["max"] == float(model.spike3.psi.max()) and spike["psi"]["min"] == float(model.spike3.psi.min())
    for name in COST_MODELS:
        assert spike["energy_pj"][name] == pytest.approx(energies[name]["energy_pj_layers"]["spike3"])
        assert read.metadata["energy_pj"][name] == pytest.approx(energies[name]["energy_pj"])
        assert read.nodes["conv1"].metadata["energy_pj"][name] == pytest.approx(
            energies[name]["energy_pj_layers"].get("conv1", 0.0))
    assert read.nodes["conv1"].metadata["energy_pj"]["lemaire2022"] > 0  # the image-reading conv's own cost
    assert read.metadata["psi_convention"] == "padded" and read.metadata["model"] == "cnn7"


def test_the_command_writes_the_graph(run, tmp_path, capsys):
    _, out, metrics = run
    assert main([str(out), "--out", str(tmp_path / "run.nir")]) == 0
    assert nir.read(tmp_path / "run.nir").metadata["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert "lemaire2022" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing"), "--out", str(tmp_path / "x.nir")])


def _random_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
                bn.running_mean.normal_(0, 0.3, generator=g)
                bn.running_var.uniform_(0.5, 2, generator=g)
                bn.weight.uniform_(0.5, 1.5, generator=g)
                bn.bias.normal_(0.5, 0.5, generator=g)
    return model.eval()


def test_vgg11_pools_and_fully_connected_layers_fold_into_convs(tmp_path):
    torch.manual_seed(0)
    model = _random_bn(create_model("vgg11", in_channels=3, width=1 / 16))
    x = torch.rand(8, 3, 32, 32) * 2
    with torch.no_grad():
        reference = model(x)
    assert all(float(m.spikes.mean()) > 0.05 for m in model.modules() if getattr(m, "spikes", None) is not None)
    graph = to_nir(model, (3, 32, 32))
    assert graph.nodes["conv2"].weight.shape[-2:] == (6, 6) and graph.nodes["conv2"].stride == (2, 2)  # pool, k3 p1
    assert graph.nodes["fc9"].weight.shape[-2:] == (2, 2)  # flatten + FC: a kernel over the 2×2 map
    assert_same_predictions(graph, x, reference, tmp_path)


def test_a_spikingjelly_network_the_meter_reads_exports_with_its_metered_energy(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), neuron.IFNode(v_threshold=0.8),
                        layer.AvgPool2d(2), layer.Flatten(), layer.Linear(4 * 4 * 4, 6), neuron.IFNode(),
                        layer.Linear(6, 3)).eval()
    _random_bn(net)
    with torch.no_grad():
        net[5].weight.mul_(4)  # the second layer fires too
    x = torch.rand(5, 1, 8, 8) * 3
    energies, rates = {}, {}
    for name in COST_MODELS:
        meter = SynapticEnergy(net, (1, 1, 8, 8), name)
        with meter, torch.no_grad():
            functional.reset_net(net)
            reference = net(x)
            energies[name] = meter.report()
            rates = {n: float(s.mean()) for n, s in meter.spikes().items()}
        meter.close()
    assert all(r > 0 for r in rates.values())
    graph = to_nir(net, (1, 8, 8), layer_metadata(meter.psi, rates, energies), {"source": "spikingjelly"})
    read = assert_same_predictions(graph, x, reference, tmp_path)
    assert read.nodes["2"].v_threshold.flat[0] == pytest.approx(0.8)
    assert read.nodes["6"].metadata["rate"] == pytest.approx(rates["6"])
    assert read.nodes["6"].metadata["energy_pj"]["loihi"] == pytest.approx(energies["loihi"]["energy_pj_layers"]["6"])
    assert json.loads(json.dumps(read.metadata)) == {"source": "spikingjelly"}


def test_what_cannot_be_exported_is_refused_in_one_line():
    resnet = create_model("resnet18", in_channels=3, width=1 / 16).eval()
    with pytest.raises(ValueError, match="needs a sequential network; 'block1' \\(PreActBlock\\)"):
        to_nir(resnet, (3, 32, 32))
    lif = nn.Sequential(layer.Linear(4, 3), neuron.LIFNode(), layer.Linear(3, 2))
    with pytest.raises(ValueError, match="spiking layer '1' \\(LIFNode\\)"):
        to_nir(lif, (4,))
    maxpool = nn.Sequential(nn.Conv2d(1, 2, 3), neuron.IFNode(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="cannot fold layer '2' \\(MaxPool2d\\)"):
        to_nir(maxpool, (1, 6, 6))
