"""A stage leaves all its outputs or none (pipeline/runs/harness.py): a failure injected at any write of the
score and figures stages, or Ctrl-C, leaves every output byte for byte as it was; a killed stage's outputs come
back on its next run."""
from pathlib import Path

import pytest

import pipeline.fileio as fileio
from pipeline.runs.harness import BACKUP, all_or_none, declared_outputs
from test_faults import _fake_artifacts, edit, repo, stage  # noqa: F401  (repo: the fixture)
from pipeline.runs.params import resolve


def _snapshot(paths: list[Path]) -> dict[str, bytes]:
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")) if p.is_dir() else [])]
    return {str(f): f.read_bytes() for f in files if f.is_file()}


def test_the_declared_outputs_are_dvc_yamls():
    assert declared_outputs("score", "claims") == [Path("results/claims/tables"), Path("results/claims/metrics.json"),
                                                   Path("results/claims/environment.json"),
                                                   Path("results/claims/reference.json"),
                                                   Path("results/claims/plots/tradeoff")]


@pytest.mark.parametrize("name", ["score", "figures"])
def test_a_failure_at_any_write_leaves_the_outputs_as_they_were(repo, capsys, monkeypatch, name):
    edit(repo / "params.yaml", lambda p: p["figures"].update(models=["cnn7"]))
    _fake_artifacts(resolve("default"), broken="")
    assert stage("score", capsys)[0] == 0 and stage("figures", capsys)[0] == 0
    outputs = declared_outputs(name, "default")
    before = _snapshot(outputs)
    assert len(before) > 5
    real_replace, writes = fileio.os.replace, []

    def failing_at(k: int):
        def replace(src, dst):
            writes.append(dst)
            if len(writes) == k:
                raise OSError(28, "No space left on device")
            real_replace(src, dst)
        return replace

    k = 1
    while True:  # fail at the 1st, 2nd, … write until the stage gets through
        writes.clear()
        monkeypatch.setattr(fileio.os, "replace", failing_at(k))
        code, err = stage(name, capsys)
        monkeypatch.setattr(fileio.os, "replace", real_replace)
        if code == 0:
            break
        assert code == 1 and "No space left on device" in err, (k, err)
        assert _snapshot(outputs) == before, f"write {k} of {name} left a mix"
        assert not (repo / BACKUP / f"{name}@default").exists()
        k += 1
    assert k > 3  # the stage writes several files, and each failure point was tried


def test_ctrl_c_and_a_killed_attempt_restore_the_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs are relative to the repository root, as dvc.yaml names them
    out = [Path("results/tables"), Path("results/metrics.json")]
    out[0].mkdir(parents=True)
    (out[0] / "a.csv").write_text("old")
    out[1].write_text("{}")
    before = _snapshot(out)
    backup = Path("backup")
    with pytest.raises(KeyboardInterrupt):
        with all_or_none(out, backup):
            (out[0]).mkdir()
            (out[0] / "b.csv").write_text("half")
            raise KeyboardInterrupt
    assert _snapshot(out) == before and not backup.exists()
    killed = all_or_none(out, backup)
    killed.__enter__()  # the outputs are aside, then the process dies: no __exit__
    assert not out[1].exists() and backup.exists()
    with all_or_none(out, backup):  # the next attempt puts them back first, then runs
        assert not out[1].exists()
        out[1].write_text('{"new": 1}')
    assert out[1].read_text() == '{"new": 1}' and not backup.exists()
