"""Pinned numerics (`pipeline.numerics`): one short run trained under every ISA this CPU supports gives the
same bits when pinned; unpinned, the libraries' ISA choice may change them."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.numerics import ISA_CAPS, PINNED_ENV, pinnable, supported_isas

ROOT = Path(__file__).resolve().parents[1]
_RUN = ["--dataset", "digits", "--width", "0.25", "--epochs", "1", "--no-randaugment", "--lr", "0.02",
        "--penalty", "syn", "--lam-norm", "8", "--weight-decay", "0", "--device", "cpu"]
_VARYING = ("epoch_seconds", "environment")  # timings, and the record of what ran


def _env(isa: str, numerics: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
    return {**env, **ISA_CAPS[isa], "PIPELINE_NUMERICS": numerics}


def _trained(out: Path, isa: str, numerics: str) -> tuple[dict, str, dict]:
    """Metrics and history of the short run trained under `isa`'s caps, and its environment record."""
    subprocess.run([sys.executable, "-m", "pipeline.train", *_RUN, "--out", str(out)], cwd=ROOT, check=True,
                   env=_env(isa, numerics), capture_output=True, text=True, timeout=300)
    metrics = json.loads((out / "metrics.json").read_text())
    history = [",".join(line.split(",")[:-1]) for line in (out / "history.csv").read_text().splitlines()]
    record = metrics["environment"]
    return {k: v for k, v in metrics.items() if k not in _VARYING}, "\n".join(history), record


def test_the_shell_cannot_unpin_the_isa():
    code = "import pipeline, torch; print(torch.backends.cpu.get_cpu_capability())"
    for numerics, expected in (("pinned", "AVX2" if pinnable() else None), ("native", "DEFAULT")):
        done = subprocess.run([sys.executable, "-c", code], env=_env("sse4.1", numerics), capture_output=True,
                              text=True, check=True, cwd=ROOT)
        if expected:
            assert done.stdout.strip() == expected, numerics


@pytest.mark.slow
def test_pinned_runs_are_identical_under_every_isa(tmp_path):
    isas = supported_isas()
    cpu = os.popen("lscpu | sed -n 's/^Model name: *//p'").read().strip() or "this CPU"
    if not pinnable() or len(isas) < 2:
        pytest.skip(f"{cpu} supports only {isas}: no second ISA to train under")
    keys = [(isa, n) for isa in isas for n in ("native", "pinned")]
    with ThreadPoolExecutor(2) as pool:  # two runs at a time, one thread each
        runs = dict(zip(keys, pool.map(lambda k: _trained(tmp_path / "-".join(k), *k), keys)))
    pinned = [runs[isa, "pinned"] for isa in isas]
    assert all(r[2]["pinned"] and r[2]["isa"] == "AVX2" for r in pinned)
    for isa, (metrics, history, _) in zip(isas[1:], pinned[1:]):
        assert metrics == pinned[0][0], f"pinned metrics differ between {isas[0]} and {isa} on {cpu}"
        assert history == pinned[0][1], f"pinned history differs between {isas[0]} and {isa} on {cpu}"
    native = {isa: runs[isa, "native"][0]["test_accuracy"] for isa in isas}
    print(f"{cpu}: native test accuracy per ISA {native}; pinned {pinned[0][0]['test_accuracy']} under all")
