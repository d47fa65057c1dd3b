"""Command-line flags for `RunConfig`: one `--key` per field, plus `--config FILE`."""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from pipeline.config import RunConfig, field_rule, load_config_file

__all__ = ["add_config_arguments", "config_from_args"]


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
