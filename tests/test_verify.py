"""`python -m pipeline.runs.verify`: this machine retrains the default item's committed sample (the tuned
baseline and one Ω_syn run) and gets every committed number back, bit for bit — so a change that moves
results without regenerating them fails here."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_committed_default_sample_reproduces_bit_for_bit():
    done = subprocess.run([sys.executable, "-m", "pipeline.runs.verify", "default"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "results/default: reproduced bit for bit (2 runs)" in done.stdout
