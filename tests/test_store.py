"""The run store: finished runs are reused, ids follow the configuration, workers give the same results."""
import json
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.runs.store import export_runs, run_all, run_id


def fake_run(cfg: RunConfig, out: Path) -> dict:
    """Stands in for train_run: counts its calls in the run directory, returns the stored metrics."""
    out.mkdir(parents=True, exist_ok=True)
    calls = out / "calls"
    calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
    metrics = out / "metrics.json"
    if not metrics.exists():
        metrics.write_text(json.dumps({"test_accuracy": cfg.seed / 10, "energy_pj": cfg.lam_norm}))
    return json.loads(metrics.read_text())


def test_run_ids_follow_result_keys_only():
    a = RunConfig.from_dict({"penalty": "syn", "lam_norm": 4.0})
    assert run_id(a) == run_id(RunConfig.from_dict({"penalty": "syn", "lam_norm": 4, "data_dir": "elsewhere"}))
    assert run_id(a) != run_id(RunConfig.from_dict({"penalty": "syn", "lam_norm": 4, "threads": 2}))
    assert run_id(a) != run_id(RunConfig.from_dict({"penalty": "syn", "lam_norm": 8.0}))


def test_store_reuses_runs_and_dedupes(tmp_path, capsys):
    configs = [RunConfig.from_dict({"penalty": "syn", "lam_norm": float(lam), "seed": seed})
               for lam in (1, 2) for seed in (0, 1)]
    first = run_all(configs + configs[:1], tmp_path / "store", workers=1, fn=fake_run)
    assert [m["test_accuracy"] for m in first] == [0.0, 0.1, 0.0, 0.1, 0.0]
    again = run_all(configs, tmp_path / "store", workers=2, fn=fake_run)
    assert again == first[:4]
    assert all((tmp_path / "store" / run_id(c) / "calls").read_text() == "2" for c in configs)
    assert "[4/4" in capsys.readouterr().err
    export_runs(configs, tmp_path / "store", tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {run_id(c) for c in configs}
    assert (tmp_path / "out" / run_id(configs[0]) / "metrics.json").exists()
