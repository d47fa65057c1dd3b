"""The accounting command: JSON fields, totals, and the human-readable table."""
import json

import pytest

from pipeline.accounting import main
from pipeline.energy import E_AC_PJ


@pytest.mark.parametrize("name", ["cnn7", "cnn7_printed", "vgg11", "resnet18"])
def test_json_report(name, capsys):
    assert main([name, "--json", "--width", "0.25"]) == 0
    report = json.loads(capsys.readouterr().out)
    layers = report["layers"]
    assert report["neurons_total"] == sum(layer["neurons"] for layer in layers)
    assert report["layers_total"] == len(layers)
    assert report["synapses_total"] == sum(layer["synapses"] for layer in layers)
    assert report["energy_pj_all_firing"] == pytest.approx(E_AC_PJ * report["synapses_total"])
    for layer in layers:
        n = 1
        for d in layer["shape"]:
            n *= d
        assert layer["neurons"] == n


def test_cnn7_default_report_and_exact_convention(capsys):
    main(["cnn7", "--json"])
    padded = json.loads(capsys.readouterr().out)
    assert [layer["shape"] for layer in padded["layers"]][0] == [64, 15, 15]
    # CNN7 pads nowhere: both conventions agree; its first consumer is C(128)k3 on 15×15 → 13×13
    assert padded["layers"][0]["synapses"] == 64 * 128 * 9 * 13 * 13
    main(["cnn7", "--json", "--psi", "exact"])
    assert json.loads(capsys.readouterr().out)["synapses_total"] == padded["synapses_total"]
    main(["vgg11", "--json", "--psi", "exact", "--width", "0.25"])
    exact = json.loads(capsys.readouterr().out)
    main(["vgg11", "--json", "--width", "0.25"])
    assert exact["synapses_total"] < json.loads(capsys.readouterr().out)["synapses_total"]


def test_table_output(capsys):
    main(["cnn7"])
    out = capsys.readouterr().out
    assert "spike1" in out and "64x15x15" in out and "E_SNN with every neuron firing" in out


def test_bad_width_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cnn7", "--width", "-1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: width must be > 0 and <= 64 (got -1.0)"
