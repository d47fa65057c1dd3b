"""What every stage script runs in: its item, the checked params, all-or-none outputs, one-line errors.

    python stages/<stage>.py ITEM        (dvc.yaml runs `<stage>@<item>` so)

A stage leaves all its outputs or none: its outputs (those dvc.yaml declares for `<stage>@<item>`, kept by
DVC while the stage runs: `persist: true`) are moved aside before the step writes, deleted on success, and
put back if the step fails or is interrupted — so a failed stage changes no committed result. A stage
killed outright leaves them aside; its next run puts them back first. This module imports nothing heavy,
so Ctrl-C while the step's own modules import still ends in one line.
"""
from __future__ import annotations

import importlib
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import yaml

from pipeline.runs.layout import Layout

__all__ = ["BACKUP", "all_or_none", "declared_outputs", "item_argument", "run_stage", "stage_main"]

BACKUP = Path(".stage-backup")  # where a running stage keeps its previous outputs (git- and dvc-ignored)


def _exit_code(err: Exception) -> int | None:
    """2 for bad input (a parameter, a dataset), 1 for the file system, None for a bug (a traceback)."""
    from pipeline.data import DataError  # here, not at the top: importing it imports torch

    if isinstance(err, (ValueError, DataError)):
        return 2
    return 1 if isinstance(err, OSError) else None


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a bad parameter or missing dataset ends it with one line and exit code 2, a file-system
    error (a missing upstream artifact, a full disk) with one line and exit code 1, Ctrl-C with one line and
    exit code 130 (finished runs stay in the run store; a rerun resumes from the checkpoints)."""
    try:
        main()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # done and written: Ctrl-C while Python exits changes nothing
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished runs and checkpoints are kept)",
              file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        code = _exit_code(err)
        if code is None:
            raise
        from pipeline.fileio import one_line

        print(f"error: {err}" if code == 2 else f"error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        sys.exit(code)


def item_argument() -> str:
    """The item named by the script's one argument (one line and exit code 2 without it)."""
    if len(sys.argv) != 2:
        print(f"usage: python {sys.argv[0]} ITEM   (an entry of dvc.yaml's `profiles`, e.g. default)", file=sys.stderr)
        sys.exit(2)
    return sys.argv[1]


def declared_outputs(stage: str, item: str, dvc_yaml: Path = Path("dvc.yaml")) -> list[Path]:
    """The outputs (outs and plots) dvc.yaml declares for `stage@item`."""
    spec = yaml.safe_load(dvc_yaml.read_text())["stages"][stage]["do"]
    paths = [next(iter(out)) if isinstance(out, dict) else out for out in (*spec.get("outs", []), *spec.get("plots", []))]
    return [Path(path.replace("${item}", item)) for path in paths]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _restore(backup: Path, outputs: list[Path]) -> None:
    """Each output back from `backup` (where present there), whatever the step left in its place."""
    for out in outputs:
        kept = backup / out
        if kept.exists():
            _remove(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            kept.rename(out)
    shutil.rmtree(backup, ignore_errors=True)


@contextmanager
def all_or_none(outputs: list[Path], backup: Path) -> Iterator[None]:
    """Move `outputs` aside into `backup`; on success drop them, on any failure or interrupt delete what the
    step wrote and put them back. A `backup` left by a killed attempt is restored first."""
    if backup.exists():
        _restore(backup, outputs)
    for out in outputs:
        if out.exists():
            (backup / out).parent.mkdir(parents=True, exist_ok=True)
            out.rename(backup / out)
    try:
        yield
    except BaseException:
        for out in outputs:
            _remove(out)  # what the step wrote: none of it stays
        _restore(backup, outputs)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def stage_main(module: str, step: str, checked: bool = True) -> None:
    """`pipeline.runs.<module>.<step>(params, layout)` for the item on the command line, its outputs all or
    none; `params` are those the item's `check` stage wrote, or with `checked=False` (the check itself) the
    item's params resolved from params.yaml and its profile."""
    item, stage = item_argument(), Path(sys.argv[0]).stem

    def main() -> None:
        from pipeline.config import NAME, check
        from pipeline.runs.params import load_checked, resolve

        layout = Layout(check("item", item, NAME, "stage argument"))  # it names artifacts/<item>/, results/<item>/
        function = getattr(importlib.import_module(f"pipeline.runs.{module}"), step)
        params = load_checked(layout.checked) if checked else resolve(layout.item)
        with all_or_none(declared_outputs(stage, layout.item), BACKUP / f"{stage}@{layout.item}"):
            function(params, layout)

    run_stage(main)
