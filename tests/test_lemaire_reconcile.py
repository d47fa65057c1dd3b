"""Our lemaire2022 energy beside spikingjelly's estimate_lemaire_energy on CNN7, VGG11, ResNet18 and a
spikingjelly multi-step network: ours plus the named differences (bench/lemaire_reconcile.py, the
table in docs/energy-models.md) equals spikingjelly's, term by term; each difference is where its
cause is and nowhere else."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("spikingjelly")  # a peer: requirements-peers.txt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from lemaire_reconcile import MEMORY, TERMS, network, reconcile  # noqa: E402

NETWORKS = ("cnn7", "vgg11", "resnet18", "spikingjelly multi-step")
CAUSES = ("conv fan-out", "max pool", "average pool", "dense call", "dense buffer", "memory price")


@pytest.fixture(scope="module")
def rows():
    return {name: reconcile(*network(name, width=1 / 16, examples=2)) for name in NETWORKS}


@pytest.mark.parametrize("name", NETWORKS)
def test_ours_plus_the_differences_is_spikingjelly(rows, name):
    r = rows[name]
    assert sum(r["ours"].values()) > 0 and all(r["ours"][t] > 0 for t in TERMS)
    for term in TERMS:
        assert r["ours"][term] + sum(r[c][term] for c in CAUSES) == pytest.approx(r["spikingjelly"][term], rel=1e-12,
                                                                                  abs=1e-9), term


@pytest.mark.parametrize("name", NETWORKS)
def test_each_difference_is_where_its_cause_is(rows, name):
    r = rows[name]
    nonzero = {c for c in CAUSES if any(r[c][t] != 0 for t in TERMS)}
    expected = {"cnn7": {"conv fan-out", "dense call", "memory price"},  # k3/k6 convs without padding: borders
                "vgg11": {"average pool", "dense call", "memory price"},  # k3 s1 p1: padded ψ = C_out·9, no border term
                "resnet18": {"conv fan-out", "dense call", "memory price"},  # the strided convs
                "spikingjelly multi-step": {"max pool", "dense call", "dense buffer", "memory price"}}[name]
    assert nonzero == expected
    assert all(r["memory price"][t] == 0 for t in TERMS if t not in MEMORY)


def test_hand_worked_differences(rows):
    # one call of the image-reading conv: C_out·k² address adds at 0.1 pJ (CNN7 width 1/16: 4 channels, k3)
    assert rows["cnn7"]["dense call"]["addressing"] == pytest.approx(4 * 9 * 0.1)
    assert rows["spikingjelly multi-step"]["dense call"]["addressing"] == pytest.approx(4 * 9 * 0.1)
    # a spike's interior fan-out C_out·k² is what it reaches under the padded convention at k3 s1 p1
    assert rows["vgg11"]["conv fan-out"] == dict.fromkeys(TERMS, 0.0)
    # the memory price: spikingjelly's memory terms are twice ours once the counts agree
    for name in NETWORKS:
        r = rows[name]
        for term in MEMORY:
            counted = r["ours"][term] + sum(r[c][term] for c in CAUSES if c != "memory price")
            assert r["spikingjelly"][term] == pytest.approx(2 * counted, rel=1e-12)
