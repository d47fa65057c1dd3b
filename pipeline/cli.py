"""The command line of one run (`python -m pipeline.train [--config FILE] [--key value ...] --out DIR`).

One `--key` flag per `RunConfig` field, plus `--config FILE`; `command_line` trains under the run
directory's lock (`pipeline.rundir.run_lock`, the one the run store's stages take, so two commands on one
`--out` never train it twice) and turns every error into one line with an exit code: 2 bad input, 1 the
file system, 130 Ctrl-C (each naming the epoch to resume after, if any).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

from pipeline.config import ConfigError, RunConfig, field_rule, load_config_file
from pipeline.data import DataError
from pipeline.fileio import PathError, one_line
from pipeline.rundir import run_lock

__all__ = ["add_config_arguments", "command_line", "config_from_args"]


def _parse(kind: type, optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null"):
            return None
        return kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--key` flag per config field (`--lam-norm` for `lam_norm`), plus `--config FILE`."""
    parser.add_argument("--config", type=Path, default=None, help="YAML file of config keys; flags override it")
    for f in fields(RunConfig):
        rule = field_rule(f.name)
        flag = "--" + f.name.replace("_", "-")
        text = f"default {f.default}" + (f"; one of {', '.join(map(str, rule.choices))}" if rule.choices else "")
        if rule.kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=_parse(rule.kind, rule.optional), default=argparse.SUPPRESS,
                                metavar=rule.kind.__name__.upper(), help=text)


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    """The config file (if any) overridden by the flags that were given."""
    d = load_config_file(ns.config) if ns.config else {}
    d.update({f.name: getattr(ns, f.name) for f in fields(RunConfig) if hasattr(ns, f.name)})
    return RunConfig.from_dict(d)


def _when(epoch: int | None) -> str:
    """When a run stopped after `epoch` finished epochs (None: before the run directory was read), and what to do."""
    if epoch is None:
        return "before training started; rerun the same command to start it"
    if epoch == 0:
        return "before epoch 1 finished (nothing to keep); rerun the same command to start again"
    return f"after epoch {epoch}; rerun the same command to resume"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, like a ConfigError
        self.exit(2, f"{self.prog}: error: {message}\n")


def command_line(train_run: Callable[[RunConfig, Path], dict], argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run `train_run(config, --out)`, print its headline metrics; the exit code.

    A Ctrl-C or OSError that carries an `epoch` (`pipeline.train.train_run`) names the epoch to resume after.
    """
    parser = _Parser(prog="python -m pipeline.train", description="Train one spiking-network run.")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # bad flags (one line printed) or --help
        return int(e.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = config_from_args(args)
        with run_lock(args.out):
            metrics = train_run(config, args.out)
    except (ConfigError, DataError, PathError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk, not the input: a full disk, a file changed under the run
        print(f"error: {type(e).__name__}: {one_line(e)}; stopped {_when(getattr(e, 'epoch', None))}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"interrupted {_when(getattr(e, 'epoch', None))}", file=sys.stderr)
        return 130
    keys = ("test_accuracy", "val_accuracy", "energy_pj", "rate_mean", "dead_rate", "diverged", "epoch_seconds")
    print(json.dumps({k: metrics[k] for k in keys}))
    return 0
