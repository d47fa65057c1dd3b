"""The pipeline's params: items and profiles, one schema for every section, one-line errors.

Every item of dvc.yaml's `profiles` list runs the same stages (`resolve`): item `default` reads
`params.yaml` — what `dvc exp run -S` edits — and any other item reads only `profiles/<item>.yaml`
over the shipped defaults, except the `HOW` keys (workers, store, backend, data_dir, …), which say how
runs are trained, not what they give, and always come from params.yaml. The `check` stage validates
an item's params once and writes one file per section (`write_checked`); each later stage depends on
the sections it reads and loads them back (`load_checked`).

In params.yaml, `profile: paper` overlays `profiles/paper.yaml` on the file, key by key. A value
you set — on the command line (`dvc exp run -S penalty.p=2`) or by editing
`params.yaml` — wins over the profile: a key whose value in `params.yaml`
differs from the shipped default (`profiles/default.yaml`, kept equal to the
committed `params.yaml` by a test) is yours and stays; every other key takes
the profile's value. Each kept key is reported in one line.

The whole file is checked on every load, with the same rules `RunConfig`
uses (`pipeline.config.check`): unknown sections and keys, wrong types,
out-of-range values, empty sweeps, unknown names, and the cross-section
facts (figure cutoff among the score cutoffs, curve λ' among the trained
ones). Any mistake raises `ConfigError` naming `section.key`, the value and
what is allowed — before any stage trains.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.config import NAME, PATH, PENALTY_CHOICES, ConfigError, Rule, RunConfig, check, field_rule, load_yaml
from pipeline.convert import CONVERSION_NEURONS, ENCODINGS
from pipeline.fileio import write_atomic
from pipeline.models import MODELS

__all__ = ["ANN2SNN_PROTOCOLS", "BACKENDS", "DEFAULT_ITEM", "HOW", "SCHEMA", "check_params", "load_checked", "profiled_params", "resolve",
           "setting_config", "write_checked"]


BACKENDS = ("local", "ray")  # who trains a stage's runs: pipeline.runs.store, pipeline.runs.ray_backend
ANN2SNN_PROTOCOLS = ("ramp", "per_intensity")  # how the converted networks are trained (plans.ann2snn_plan)
DEFAULT_ITEM = "default"  # the pipeline item that reads params.yaml (whichever profile it selects)
# Keys that say how runs are trained or where data lies, not what they give: read from params.yaml by every
# item's stages, never a dependency (compute.threads, compute.device and compute.loader_workers do change
# results, so they are not among them).
HOW = {"compute": ("workers", "store", "backend", "ray_address", "gpus_per_run", "max_retries"),
       "data": ("data_dir", "download")}


def _sweep(key: str) -> Rule:
    """A non-empty list of values of RunConfig field `key`."""
    return replace(field_rule(key), listed="yes")


_SELECTION = replace(NAME, optional=True, listed="yes")  # names of settings a section runs on (absent: all)

SCHEMA: dict[str, dict[str, Rule]] = {
    "compute": {"workers": Rule(int, 1, maximum=256, inclusive=True), "threads": field_rule("threads"),
                "device": field_rule("device"), "store": PATH, "backend": Rule(str, choices=BACKENDS),
                "gpus_per_run": Rule(float, 0, maximum=64, inclusive=True), "ray_address": Rule(str),
                "max_retries": Rule(int, 0, maximum=100, inclusive=True),
                "loader_workers": field_rule("loader_workers")},
    "data": {k: field_rule(k) for k in ("data_dir", "split_seed", "download")},
    "train": {k: field_rule(k) for k in ("epochs", "batch_size", "randaugment", "psi", "limit_train")},
    "tune_wd": {"weight_decays": _sweep("weight_decay"), "seeds": _sweep("seed")},
    "penalty": {"kinds": replace(field_rule("penalty"), choices=PENALTY_CHOICES[1:], listed="yes"),  # not "none"
                "p": replace(field_rule("p"), listed="maybe"), "lam_norms": _sweep("lam_norm"),
                "seeds": _sweep("seed")},
    "grid": {"lams": _sweep("lam"), "weight_decays": _sweep("weight_decay"), "bn_decays": _sweep("bn_decay"),
             "seeds": _sweep("seed"), "settings": _SELECTION},
    "ann2snn": {"lam_norms": _sweep("lam_norm"), "T": Rule(int, 1, maximum=10_000, inclusive=True, listed="yes"),
                "seeds": _sweep("seed"), "settings": _SELECTION,
                "protocol": Rule(str, choices=ANN2SNN_PROTOCOLS, listed="maybe"),
                "ramp_epochs": field_rule("epochs"),
                "neuron": Rule(str, choices=tuple(CONVERSION_NEURONS), listed="maybe"),
                "encoding": Rule(str, choices=ENCODINGS)},
    "score": {"cutoffs": Rule(float, 0, maximum=100, listed="yes")},
    "claims": {"alpha": Rule(float, 0, strict=True, maximum=1), "power": Rule(float, 0, strict=True, maximum=1),
               "margin_accuracy": Rule(float, 0, strict=True), "margin_energy": Rule(float, 0, strict=True),
               "margin_time": Rule(float, 0, strict=True), "timing": PATH},
    "figures": {"curve_lam_norms": _sweep("lam_norm"), "cutoff": Rule(float, 0, maximum=100),
                "models": Rule(str, choices=MODELS, listed="yes")},
}
_TOP = ("profile", "settings")
_NOT_RUN_KEYS = ("name", "weight_decays", "ps")  # setting keys that are not RunConfig keys
_SETTING_SWEEPS = {"weight_decays": "weight_decay", "ps": "p"}  # a setting's own sweep of a RunConfig key


def setting_config(setting: dict, shared: dict | None = None, varied: dict | None = None) -> RunConfig:
    """The RunConfig of one run: `shared` keys, overridden by the setting's own (less its name and
    tuning list), overridden by the keys the experiment varies."""
    own = {k: v for k, v in setting.items() if k not in _NOT_RUN_KEYS}
    return RunConfig.from_dict({**(shared or {}), **own, **(varied or {})})


def _check_settings(settings: Any) -> None:
    if not isinstance(settings, list) or not settings:
        raise ConfigError("params key 'settings' must be a non-empty list of mappings")
    names = []
    for i, setting in enumerate(settings):
        if not isinstance(setting, dict):
            raise ConfigError(f"params key 'settings[{i}]' must be a mapping with a 'name'")
        names.append(check(f"settings[{i}].name", setting.get("name"), NAME, "params key"))
        for sweep, key in _SETTING_SWEEPS.items():
            if sweep in setting:
                setting[sweep] = check(f"settings[{i}].{sweep}", setting[sweep], _sweep(key), "params key")
        try:
            setting_config(setting)
        except ConfigError as err:
            raise ConfigError(f"params key 'settings[{i}]' ({setting['name']}): {err}") from None
    check("settings", names, replace(NAME, listed="yes"), "params key")  # unique, even ignoring case


def _check_section(section: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"params key '{section}' must be a mapping (got {value!r})")
    schema = SCHEMA[section]
    missing = [key for key, rule in schema.items() if key not in value and not rule.optional]
    if missing:
        raise ConfigError(f"params section '{section}' lacks the key(s) {', '.join(missing)}; "
                          "see the committed params.yaml")
    for key, item in value.items():
        if key not in schema:
            raise ConfigError(f"unknown params key '{section}.{key}'; allowed: {', '.join(schema)}")
        value[key] = check(f"{section}.{key}", item, schema[key], "params key")
    return value


def _check_across(params: dict) -> None:
    """Facts that tie two sections together."""
    figures, trained = params.get("figures", {}), params.get("penalty", {}).get("lam_norms", [])
    untrained = [x for x in figures.get("curve_lam_norms", []) if x not in trained]
    if untrained:
        raise ConfigError(f"params key 'figures.curve_lam_norms' names λ' {untrained} that penalty.lam_norms "
                          f"does not train; allowed: {trained}")
    names = [s["name"] for s in params.get("settings", [])]
    for section in ("grid", "ann2snn"):
        unknown = [n for n in params.get(section, {}).get("settings") or [] if n not in names]
        if unknown:
            raise ConfigError(f"params key '{section}.settings' names {unknown}, not in settings; allowed: {names}")
    cutoffs = params.get("score", {}).get("cutoffs", [])
    if "cutoff" in figures and figures["cutoff"] not in cutoffs:
        raise ConfigError(f"params key 'figures.cutoff' must be one of score.cutoffs {cutoffs} "
                          f"(got {figures['cutoff']})")


def check_params(params: dict) -> dict:
    """Every section of `params` (the profile already applied) checked; returns it with numbers as floats."""
    for key in params:
        if key not in SCHEMA and key not in _TOP:
            raise ConfigError(f"unknown params section {key!r}; allowed: {', '.join([*_TOP, *SCHEMA])}")
    missing = [key for key in (*_TOP, *SCHEMA) if key not in params]
    if missing:
        raise ConfigError(f"params.yaml lacks the section(s) {', '.join(missing)}; see the committed params.yaml")
    _check_settings(params["settings"])
    for section in SCHEMA:
        _check_section(section, params[section])
    _check_across(params)
    return params


def _read(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"{path} not found; run the stage from the repository root")
    return load_yaml(path, "sections")


def _overlay(params: dict, default: dict, profile: dict, name: str, where: str = "") -> dict:
    """`profile`'s values over `params`, except where `params` differs from `default` (set by the user)."""
    merged = dict(params)
    for key, value in profile.items():
        mine, shipped = params.get(key), default.get(key)
        if isinstance(value, dict) and isinstance(mine, dict) and isinstance(shipped, dict):
            merged[key] = _overlay(mine, shipped, value, name, f"{where}{key}.")
        elif key in params and mine != shipped and mine != value:
            print(f"params: {where}{key} = {mine!r} (set in params.yaml) wins over profile {name}'s {value!r}",
                  file=sys.stderr)
        else:
            merged[key] = value
    return merged


def _profiles(path: Path) -> list[str]:
    """The profiles beside `path` (profiles/*.yaml), each name a safe path component (it names results/<name>/)."""
    names = sorted(p.stem for p in (path.parent / "profiles").glob("*.yaml"))
    return check("profiles", names, replace(NAME, listed="yes"), "profile file") if names else names


def profiled_params(path: Path | str = "params.yaml", profile: str | None = None) -> dict[str, Any]:
    """The whole params.yaml with a profile applied (`profile`, else the file's own), validated."""
    path = Path(path)
    params, profiles = _read(path), path.parent / "profiles"
    profile = params.get("profile", "default") if profile is None else profile
    available = _profiles(path)
    if not isinstance(profile, str) or profile not in available:
        raise ConfigError(f"params key 'profile' must be one of {', '.join(available)} (got {profile!r})")
    if profile != "default":
        params = _overlay(params, _read(profiles / "default.yaml"), _read(profiles / f"{profile}.yaml"), profile)
    params["profile"] = profile
    return check_params(params)


def resolve(item: str, path: Path | str = "params.yaml") -> dict[str, Any]:
    """The validated params of the pipeline's `item` (a `profiles:` entry of dvc.yaml).

    `default` is params.yaml with the profile it selects (what `dvc exp run -S` edits); any other item is
    `profiles/<item>.yaml` over the shipped defaults (`profiles/default.yaml`), so params.yaml edits leave its
    results alone — except the `HOW` keys (how runs are trained, not what they give), which every item takes
    from params.yaml.
    """
    path = Path(path)
    if item == DEFAULT_ITEM:
        return profiled_params(path)
    if item not in _profiles(path):
        raise ConfigError(f"profile {item!r} not found: no {path.parent / 'profiles' / item}.yaml")
    shipped = _read(path.parent / "profiles" / "default.yaml")
    params = _overlay(shipped, shipped, _read(path.parent / "profiles" / f"{item}.yaml"), item)
    mine = _read(path)
    for section, keys in HOW.items():
        params[section] = {**params[section], **{k: v for k, v in mine.get(section, {}).items() if k in keys}}
    return check_params({**params, "profile": item})


def write_checked(params: dict[str, Any], out_dir: Path) -> None:
    """One JSON file per section of validated `params` in `out_dir` (the `check` stage's output), less the
    `HOW` keys: the files the later stages depend on, so a section's edit reruns only the stages that read it."""
    for section, value in params.items():
        if section in HOW:
            value = {k: v for k, v in value.items() if k not in HOW[section]}
        write_atomic(out_dir / f"{section}.json", json.dumps(value, indent=1, sort_keys=True) + "\n")


def load_checked(checked: Path, path: Path | str = "params.yaml") -> dict[str, Any]:
    """The params the `check` stage wrote to `checked` (`write_checked`), with params.yaml's `HOW` keys, validated."""
    if not checked.is_dir():
        raise ConfigError(f"{checked} not found: run the check stage first (dvc repro)")
    params = {p.stem: json.loads(p.read_text()) for p in sorted(checked.glob("*.json"))}
    mine = _read(Path(path))
    for section, keys in HOW.items():
        params[section] = {**params.get(section, {}), **{k: v for k, v in mine.get(section, {}).items() if k in keys}}
    return check_params(params)
