"""examples/: each peer's network trains on digits at the tiny size, with and without our penalty,
prints accuracy and energy per image, and the penalty lowers the energy."""
import importlib
import sys
from pathlib import Path

import pytest

pytest.importorskip("spikingjelly")  # a peer: requirements-peers.txt
pytest.importorskip("snntorch")  # a peer: requirements-peers.txt
pytest.importorskip("sinabs")  # a peer: requirements-peers.txt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


@pytest.mark.parametrize("script", ["spikingjelly_csnn", "snntorch_csnn", "sinabs_net"])
def test_example_runs_and_the_penalty_lowers_energy(script, capsys):
    example = importlib.import_module(script).EXAMPLE
    results = importlib.import_module("common").main(example, ["--tiny", "--lam", "0.1"])
    (acc0, energy0), (acc1, energy1) = results[0.0], results[0.1]
    assert 0 <= acc0 <= 1 and 0 <= acc1 <= 1
    assert energy0 > 0 and energy1 < energy0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("energy with / without the penalty: ")
    assert "pJ per image" in out[-2] and "accuracy" in out[-2]
