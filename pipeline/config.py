"""Typed configuration of one training run, and the one validator every setting goes through.

`RunConfig` is frozen; constructing it (directly or through `from_dict`)
checks names, types and ranges before any data is loaded or model built.
`Rule` and `check` are the validator: `RunConfig` derives a rule per field
from its type, the registries' names and `_MINIMA`; `pipeline.runs.params`
checks `params.yaml` with the same rules. `load_yaml` reads a YAML file with
`1e-3` as a number, for config files and `params.yaml` alike.
The defaults are the profile tuned for the offline `digits` dataset (CNN7 at
half width, Adam at lr 2e-2, RandAugment, 20 epochs: ~99 % test accuracy in a
few CPU minutes); the paper's per-setting values are in spec §4 (Table 6).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Union, get_args, get_origin, get_type_hints

import yaml

from pipeline.data import DATASETS
from pipeline.models import MODELS
from pipeline.neuron import NEURON_KINDS, SURROGATES
from pipeline.penalties import ENERGY_PENALTIES, PENALTIES
from pipeline.synapses import PSI_CONVENTIONS

__all__ = [
    "DEVICES",
    "NON_RESULT_KEYS",
    "OPTIMIZERS",
    "PENALTY_CHOICES",
    "ConfigError",
    "Rule",
    "RunConfig",
    "check",
    "field_rule",
    "device_kind",
    "identity_mismatch",
    "result_keys",
    "load_config_file",
    "load_yaml",
]

OPTIMIZERS = ("adam", "msgd")
DEVICES = ("auto", "cpu", "cuda")
PENALTY_CHOICES = ("none", *PENALTIES, *ENERGY_PENALTIES)
# Keys that do not change a run's result: a finished run or checkpoint still matches when only these differ.
# The thread count does (it orders float sums; `pipeline.numerics`), and so does the device, by its kind.
NON_RESULT_KEYS = ("data_dir", "download")


class ConfigError(ValueError):
    """An invalid run configuration or parameter; the message is one line naming the key."""


@dataclass(frozen=True)
class Rule:
    """What one value may be: its type, bounds, allowed names, and whether it is (or may be) a list."""

    kind: type  # float (any real number), int, bool or str
    minimum: float | None = None
    strict: bool = False  # minimum excluded
    maximum: float | None = None  # excluded
    choices: tuple | None = None
    optional: bool = False  # None allowed
    listed: str = "no"  # "no": one value; "yes": a non-empty list of them; "maybe": either


_TYPE_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def check(key: str, value: Any, rule: Rule, noun: str = "config key") -> Any:
    """`value` if it obeys `rule` (ints given for floats become floats), else a one-line ConfigError.

    The message names the value as `noun 'key'`, e.g. "config key 'p'" or "params key 'penalty.p'".
    """
    where = f"{noun} '{key}'"
    if rule.listed == "yes" or (rule.listed == "maybe" and isinstance(value, list)):
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} must be a non-empty list (got {value!r})")
        one = replace(rule, listed="no")
        return [check(f"{key}[{i}]", v, one, noun) for i, v in enumerate(value)]
    if value is None and rule.optional:
        return None
    if rule.kind is float:  # an int is a float; a bool is not a number
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"{where} must be finite (got {value})")
    elif rule.kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, rule.kind)
    if not ok:
        wanted = _TYPE_WORDS[rule.kind] + (" or null" if rule.optional else "")
        raise ConfigError(f"{where} must be {wanted} (got {type(value).__name__} {value!r})")
    if rule.choices is not None and value not in rule.choices:
        raise ConfigError(f"{where} must be one of {', '.join(map(str, rule.choices))} (got {value!r})")
    if rule.minimum is not None and (value <= rule.minimum if rule.strict else value < rule.minimum):
        raise ConfigError(f"{where} must be {'>' if rule.strict else '>='} {rule.minimum:g} (got {value})")
    if rule.maximum is not None and value >= rule.maximum:
        raise ConfigError(f"{where} must be < {rule.maximum:g} (got {value})")
    return float(value) if rule.kind is float else value


@dataclass(frozen=True)
class RunConfig:
    """One run: data (§5), model and neuron (§1, §9), objective Eq. 21 and optimisation (§4)."""

    # data
    dataset: str = "digits"
    data_dir: str = "data"
    download: bool = True  # fetch missing torchvision files when online
    split_seed: int = 0  # seed of the train/validation permutation (shared by every run)
    split_file: str | None = None  # saved split artifact; created if absent
    limit_train: int | None = None  # keep only this many training images (quick runs)
    randaugment: bool = True
    # model and neuron
    model: str = "cnn7"
    neuron: str = "spike"  # spike (SNN) or qrelu (the ANN of the ANN→SNN baseline, spec §7)
    width: float = 0.5
    surrogate: str = "s3nn"
    alpha: float = 0.25
    tau: float = 0.6
    u_th: float = 1.0
    psi: str = "padded"
    # objective (Eq. 21)
    penalty: str = "none"
    p: float = 1.0
    lam: float = 0.0  # raw λ
    lam_norm: float = 0.0  # normalized λ': loss term λ'·Ω/Ω(1)
    weight_decay: float = 1e-4  # λ_WD
    bn_decay: int = 0  # B_BN
    # optimisation
    optimizer: str = "adam"
    lr: float = 2e-2  # tuned on digits: 1e-3 → ~66 %, 1e-2 → 97–99.7 %, 2e-2 → 99 % (20 epochs)
    batch_size: int = 100
    epochs: int = 20
    seed: int = 0
    threads: int = 1
    loader_workers: int = 0  # DataLoader processes preparing training batches (seeded; 0: the run's process)
    device: str = "auto"  # auto = cuda when available, else cpu

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check(f.name, getattr(self, f.name), field_rule(f.name)))
        if self.lam and self.lam_norm:
            raise ConfigError(
                f"config keys 'lam' and 'lam_norm' exclude each other: set at most one non-zero "
                f"(got {self.lam} and {self.lam_norm})"
            )
        if self.penalty == "none" and (self.lam or self.lam_norm):
            raise ConfigError("config key 'penalty' is 'none' but 'lam' or 'lam_norm' is non-zero; pick a penalty")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Build from a mapping; unknown keys, wrong types and bad values raise `ConfigError`."""
        allowed = [f.name for f in fields(cls)]
        for key in d:
            if key not in allowed:
                raise ConfigError(f"unknown config key {key!r}; allowed keys: {', '.join(allowed)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready."""
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that determine the run's result (see `result_keys`)."""
        return result_keys(self.to_dict())


def device_kind(device: str) -> str:
    """`cpu` or `cuda`: the kind of device a run with `device` trains on here (`auto`: CUDA when available)."""
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    return device.split(":")[0]


@functools.cache
def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def result_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a config mapping that determine a run's result: all but `NON_RESULT_KEYS`, the device
    by its kind (`device_kind`), and `loader_workers` only under RandAugment (which worker draws which
    augmentation depends on their number)."""
    ignored = (*NON_RESULT_KEYS, *(() if config.get("randaugment") else ("loader_workers",)))
    keys = {k: v for k, v in config.items() if k not in ignored}
    if "device" in keys:
        keys["device"] = device_kind(keys["device"])
    return keys


# Allowed names come from the registries.
_CHOICES: dict[str, tuple] = {
    "dataset": DATASETS,
    "model": MODELS,
    "neuron": tuple(NEURON_KINDS),
    "surrogate": tuple(SURROGATES),
    "psi": PSI_CONVENTIONS,
    "penalty": PENALTY_CHOICES,
    "optimizer": OPTIMIZERS,
    "bn_decay": (0, 1),
    "device": DEVICES,
}
# key: (bound, strict) — value must be > bound (strict) or >= bound.
_MINIMA: dict[str, tuple[float, bool]] = {
    "split_seed": (0, False), "limit_train": (1, False), "width": (0, True), "alpha": (0, True),
    "tau": (0, True), "u_th": (0, True), "p": (1, False), "lam": (0, False), "lam_norm": (0, False),
    "weight_decay": (0, False), "lr": (0, True), "batch_size": (1, False), "epochs": (1, False),
    "seed": (0, False), "threads": (1, False), "loader_workers": (0, False),
}


@functools.cache
def field_rule(key: str) -> Rule:
    """The rule of RunConfig field `key`: its annotated type, its registry's names, its minimum."""
    hint = get_type_hints(RunConfig)[key]
    optional = get_origin(hint) is Union or type(hint).__name__ == "UnionType"
    kind = next(a for a in get_args(hint) if a is not type(None)) if optional else hint
    minimum, strict = _MINIMA.get(key, (None, False))
    return Rule(kind, minimum, strict, choices=_CHOICES.get(key), optional=optional)


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.1 wants `1.0e-3`), as DVC's YAML 1.2 does."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def load_yaml(path: Path | str, what: str) -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: {}); a one-line ConfigError naming `what` otherwise."""
    try:
        d = yaml.load(Path(path).read_text(), Loader=_YamlLoader)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path} is unreadable: {' '.join(str(e).split())}") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(f"{path} must hold a mapping of {what} (got {type(d).__name__})")
    return d


def load_config_file(path: Path | str) -> dict[str, Any]:
    """Read a flat YAML mapping of config keys (validate it with `RunConfig.from_dict`)."""
    return load_yaml(path, "config keys")


def identity_mismatch(stored: dict, identity: dict, what: Path) -> ConfigError:
    """The one-line error for a file at `what` that belongs to a run with another config."""
    diff = [f"{k}: {stored.get(k)!r} there, {v!r} here" for k, v in identity.items() if stored.get(k) != v]
    diff += [f"{k}: unknown here" for k in stored if k not in identity]
    return ConfigError(f"{what} belongs to a run with another config ({'; '.join(diff)}); "
                       "use another output directory or delete it")
