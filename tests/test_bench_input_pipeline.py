"""bench/input_pipeline.py end to end at a tiny size: one ratio per worker count, last line."""
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_input_pipeline_prints_a_ratio_per_worker_count():
    done = subprocess.run([sys.executable, str(BENCH / "input_pipeline.py"), "--rounds", "1", "--images", "40",
                           "--batch", "20", "--width", "0.125", "--workers", "0", "2"],
                          capture_output=True, text=True, timeout=300, check=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("ratios (loader images/s / model step images/s"), done.stdout
    values = dict(re.findall(r"(workers\d)=(\d+\.\d{3})(?:\s|$)", last))
    assert set(values) == {"workers0", "workers2"} and all(float(v) > 0 for v in values.values())
