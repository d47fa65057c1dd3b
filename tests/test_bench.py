"""bench/: the sandwiched timing and its ratios, and each script end to end at a tiny size."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import timing  # noqa: E402

from pipeline.comparisons import read_timing  # noqa: E402


class FakeClock:
    """A perf_counter that advances only when a timed function 'works'."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def work(self, name: str, seconds) -> callable:
        def fn() -> None:
            self.calls.append(name)
            self.now += seconds() if callable(seconds) else seconds
        return fn


def test_each_candidate_sits_between_two_reference_calls(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    drift = iter(range(1, 100))  # the reference slows down call after call: 1 s, 2 s, 3 s, …
    pairs = timing.sandwiched_seconds(clock.work("ref", lambda: next(drift)),
                                      {"a": clock.work("a", 10.0), "b": clock.work("b", 20.0)}, rounds=2)
    # warm-up: ref, a, b; round 0: ref a ref b ref; round 1 (rotated): ref b ref a ref
    assert clock.calls == ["ref", "a", "b", "ref", "a", "ref", "b", "ref", "ref", "b", "ref", "a", "ref"]
    # the reference calls are the 2nd..7th of `drift` (1 s went to the warm-up)
    assert pairs == {"a": [(10.0, 2.5), (10.0, 6.5)], "b": [(20.0, 3.5), (20.0, 5.5)]}


def test_a_given_clock_times_the_calls():
    clock = FakeClock()
    pairs = timing.sandwiched_seconds(clock.work("ref", 1.0), {"a": clock.work("a", 3.0)}, rounds=1, clock=clock)
    assert pairs == {"a": [(3.0, 1.0)]}  # the wall clock, untouched here, would have measured ~0 s


def test_print_ratios_ends_with_the_ratio_line(capsys):
    pairs = {"a": [(2.0, 1.0), (3.0, 1.0), (4.0, 2.0)], "b": [(1.0, 2.0), (1.0, 1.0), (1.0, 1.0)]}
    summary = timing.print_ratios("title", pairs, "ref")
    assert summary == {"a": 2.0, "b": 1.0}
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "ratios (x / ref, median of rounds): a=2.000  b=1.000"
    assert "of minima 2.000" in lines[2]  # min 2.0 / min 1.0
    timing.print_ratios("t", pairs, "ref", {"a": 0.5})  # attributed: 1 + 0.5 / median reference (1.0)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "ratios (x / ref, median of rounds [attributed]): a=2.000 [1.500]  b=1.000")


def test_layer_io_and_layers_alone():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU())
    x = torch.randn(5, 3)
    _, inputs, _ = timing.layer_io(model, (nn.ReLU,), x)
    assert [tuple(u.shape) for u in inputs] == [(5, 4), (5, 2)]
    torch.testing.assert_close(inputs[1], model[2](model[1](model[0](x))))
    resets = []
    seconds = timing.layers_alone_seconds({"relu": [model[1], model[3]]}, inputs, repeats=3,
                                          before={"relu": lambda: resets.append(1)})
    assert set(seconds) == {"relu"} and seconds["relu"] > 0 and len(resets) == 4


@pytest.mark.parametrize("script,args", [
    ("dense_limit.py", ["--width", "0.125", "--batch", "8", "--repeats", "2", "--surrogate", "linear"]),
    ("psi_setup.py", []),
])
def test_script_prints_its_ratios_last(script, args):
    done = subprocess.run([sys.executable, str(BENCH / script), "--rounds", "1", *args],
                          capture_output=True, text=True, timeout=300, check=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("ratios"), done.stdout
    values = [float(v) for v in re.findall(r"=(\d+\.\d{3})(?:\s|$)", last)]
    assert values and all(v > 0 for v in values)


def test_penalty_overhead_writes_the_rounds_the_claims_table_reads(tmp_path):
    out = tmp_path / "training_time.json"
    done = subprocess.run([sys.executable, str(BENCH / "penalty_overhead.py"), "--rounds", "2", "--width", "0.125",
                           "--clock", "cpu", "--batch", "8", "--repeats", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1].startswith("ratios"), done.stdout
    timing = read_timing(out)
    assert len(timing) == 2 * 6 and set(timing["penalty"]) == {"syn", "total", "balance"}
    assert set(timing["p"]) == {1.0, 2.0} and (timing["ratio"] > 0).all()
    recorded = json.loads(out.read_text())
    assert (recorded["width"], recorded["clock"], recorded["steps_per_call"]) == (0.125, "cpu", 1)
