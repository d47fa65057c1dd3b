"""bench/meter_overhead.py and bench/meter_reconcile.py end to end at a tiny size."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("spikingjelly")  # a peer: requirements-peers.txt
pytest.importorskip("sinabs")  # a peer: requirements-peers.txt
pytest.importorskip("neurobench")  # a peer: requirements-peers.txt

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_meter_overhead_prints_its_ratios_last():
    done = subprocess.run([sys.executable, str(BENCH / "meter_overhead.py"), "--rounds", "1", "--width", "0.25",
                           "--batch", "4", "--steps", "2", "--repeats", "2"],
                          capture_output=True, text=True, timeout=300, check=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("ratios"), done.stdout
    assert "meter=" in last and "meter + penalty=" in last
    values = [float(v) for v in re.findall(r"=(\d+\.\d{3})", last)]
    assert len(values) == 2 and all(v > 0 for v in values)


def test_meter_reconcile_prints_the_table():
    done = subprocess.run([sys.executable, str(BENCH / "meter_reconcile.py"), "--batch", "2", "--steps", "2"],
                          capture_output=True, text=True, timeout=300, check=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 4 and "spikingjelly, max pool" in rows[1] and "sinabs" in rows[3], done.stdout
