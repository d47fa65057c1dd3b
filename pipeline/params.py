"""The pipeline's `params.yaml`: profiles, per-section schemas, one-line errors.

Each DVC stage loads only the sections it reads. `profile: paper` overlays
`profiles/paper.yaml` on the file (its values win), so one override
(`dvc exp run -S profile=paper`) switches to the paper's settings. Every
section is checked before any work: an unknown key, a wrong type or an
out-of-range value raises `ParamsError` naming `section.key`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from pipeline.config import ConfigError, RunConfig

__all__ = ["ParamsError", "load_params", "setting_config"]


class ParamsError(ValueError):
    """A bad value in params.yaml (or a profile), described in one line."""


# rule: (kind, minimum); kinds: int, number, bool, str, ints, numbers (non-empty lists),
# number_or_numbers, strs, settings (list of mappings checked against RunConfig).
_SCHEMA: dict[str, dict[str, tuple[str, float | None]]] = {
    "compute": {"workers": ("int", 1), "threads": ("int", 1), "device": ("str", None), "store": ("str", None)},
    "data": {"data_dir": ("str", None), "split_seed": ("int", 0), "download": ("bool", None)},
    "train": {"epochs": ("int", 1), "batch_size": ("int", 1), "randaugment": ("bool", None),
              "psi": ("str", None), "limit_train": ("int", 1)},
    "tune_wd": {"weight_decays": ("numbers", 0), "seeds": ("ints", 0)},
    "penalty": {"p": ("number_or_numbers", 1), "lam_norms": ("numbers", 0), "seeds": ("ints", 0)},
    "grid": {"lams": ("numbers", 0), "weight_decays": ("numbers", 0), "bn_decays": ("ints", 0),
             "seeds": ("ints", 0)},
    "ann2snn": {"lam_norms": ("numbers", 0), "T": ("ints", 1), "seeds": ("ints", 0)},
    "score": {"cutoffs": ("numbers", 0)},
    "figures": {"curve_lam_norms": ("numbers", 0)},
}
_TOP = {"profile": ("str", None), "settings": ("settings", None)}
_PROFILES = Path("profiles")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(where: str, value: Any, kind: str, minimum: float | None) -> None:
    if kind in ("ints", "numbers", "strs") or (kind == "number_or_numbers" and isinstance(value, list)):
        if not isinstance(value, list) or not value:
            raise ParamsError(f"params key '{where}' must be a non-empty list (got {value!r})")
        item = {"ints": "int", "strs": "str"}.get(kind, "number")
        for i, v in enumerate(value):
            _check(f"{where}[{i}]", v, item, minimum)
        return
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "number": _is_number(value), "number_or_numbers": _is_number(value),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}[kind]
    if not ok:
        word = {"int": "an integer", "bool": "true or false", "str": "a string"}.get(kind, "a number")
        raise ParamsError(f"params key '{where}' must be {word} (got {value!r})")
    if minimum is not None and value < minimum:
        raise ParamsError(f"params key '{where}' must be >= {minimum:g} (got {value})")


def _merge(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        both_dicts = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merge(base[key], value) if both_dicts else value
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found; run the stage from the repository root") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must hold a mapping of sections")
    return data


def _check_settings(settings: Any) -> None:
    if not isinstance(settings, list) or not settings:
        raise ParamsError("params key 'settings' must be a non-empty list of mappings")
    names = []
    for i, setting in enumerate(settings):
        if not isinstance(setting, dict) or not isinstance(setting.get("name"), str):
            raise ParamsError(f"params key 'settings[{i}]' must be a mapping with a 'name' string")
        names.append(setting["name"])
        try:
            setting_config(setting)
        except ConfigError as err:
            raise ParamsError(f"params key 'settings[{i}]' ({setting['name']}): {err}") from None
    if len(set(names)) != len(names):
        raise ParamsError(f"params key 'settings': names must be unique (got {names})")


def load_params(sections: Sequence[str], path: Path | str = "params.yaml") -> dict[str, Any]:
    """The requested sections of params.yaml (with the selected profile applied), validated."""
    params = _read_yaml(Path(path))
    profile = params.get("profile", "default")
    if profile != "default":
        overlay = _PROFILES / f"{profile}.yaml"
        if not isinstance(profile, str) or not overlay.exists():
            available = ["default"] + sorted(p.stem for p in _PROFILES.glob("*.yaml"))
            raise ParamsError(f"params key 'profile' must be one of {', '.join(available)} (got {profile!r})")
        params = _merge(params, _read_yaml(overlay))
    for key in params:
        if key not in _SCHEMA and key not in _TOP:
            raise ParamsError(f"unknown params section {key!r}; allowed: {', '.join([*_TOP, *_SCHEMA])}")
    result = {}
    for section in sections:
        if section not in params:
            raise ParamsError(f"params.yaml has no section {section!r}")
        value = params[section]
        if section == "settings":
            _check_settings(value)
        elif section in _SCHEMA:
            if not isinstance(value, dict):
                raise ParamsError(f"params key '{section}' must be a mapping")
            for key, item in value.items():
                if key not in _SCHEMA[section]:
                    raise ParamsError(f"unknown params key '{section}.{key}'; allowed: "
                                      f"{', '.join(_SCHEMA[section])}")
                _check(f"{section}.{key}", item, *_SCHEMA[section][key])
        else:
            _check(section, value, *_TOP[section])
        result[section] = value
    return result


def setting_config(setting: dict, shared: dict | None = None, varied: dict | None = None) -> RunConfig:
    """The RunConfig of one run: `shared` keys, overridden by the setting's own (less its name and
    tuning list), overridden by the keys the experiment varies."""
    own = {k: v for k, v in setting.items() if k not in ("name", "weight_decays")}
    return RunConfig.from_dict({**(shared or {}), **own, **(varied or {})})
