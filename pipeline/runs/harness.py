"""What every stage script runs in: its item from the command line, the checked params, one-line errors.

    python stages/<stage>.py ITEM        (dvc.yaml runs `<stage>@<item>` so)
"""
from __future__ import annotations

import sys
from typing import Callable

from pipeline.data import DataError
from pipeline.fileio import one_line
from pipeline.runs.layout import Layout
from pipeline.runs.params import load_checked

__all__ = ["item_argument", "run_stage", "stage_main"]

Step = Callable[[dict, Layout], None]


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a bad parameter or missing dataset ends it with one line and exit code 2, a file-system
    error (a missing upstream artifact, a full disk) with one line and exit code 1, Ctrl-C with one line and
    exit code 130 (finished runs stay in the run store; a rerun resumes from the checkpoints)."""
    try:
        main()
    except (ValueError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a missing upstream artifact, a full disk: the environment, not a bug
        print(f"error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished runs and checkpoints are kept)",
              file=sys.stderr)
        sys.exit(130)


def item_argument() -> Layout:
    """The `Layout` of the item named by the script's one argument (one line and exit code 2 without it)."""
    if len(sys.argv) != 2:
        print(f"usage: python {sys.argv[0]} ITEM   (an entry of dvc.yaml's `profiles`, e.g. default)", file=sys.stderr)
        sys.exit(2)
    return Layout(sys.argv[1])


def stage_main(step: Step) -> None:
    """`step(params, layout)` for the item on the command line, with the params its `check` stage wrote."""
    layout = item_argument()
    run_stage(lambda: step(load_checked(layout.checked), layout))
