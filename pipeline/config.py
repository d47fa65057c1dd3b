"""Typed configuration of one training run, and the one validator every setting goes through.

`RunConfig` is frozen; constructing it (directly or through `from_dict`)
checks names, types and ranges before any data is loaded or model built:
every number finite and between bounds a machine can honour, the device one
this machine has, and the model small enough for its memory (`_check_memory`).
`Rule` and `check` are the validator: `RunConfig` derives a rule per field
from its type, the registries' names, `_MINIMA`, `_MAXIMA`, `_FORMS` and
`_HERE`; `pipeline.runs.params` checks `params.yaml` with the same rules, and
`pipeline.rundir` the metrics a run wrote. A list holds at most `max_items`
values, none twice; a string that becomes a file or folder name is a `NAME`
(one safe path component), one that is a path a `PATH`. `load_yaml` reads a
YAML file (at most `MAX_YAML_BYTES`) with `1e-3` as a number, for config files
and `params.yaml` alike.
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
from typing import Any, Callable, Mapping, Union, get_args, get_origin, get_type_hints

import yaml

from pipeline import machine
from pipeline.data import DATASETS, INFO
from pipeline.models import MAX_WIDTH, MODELS, Footprint, footprint
from pipeline.neuron import NEURON_KINDS, SURROGATES
from pipeline.penalties import ENERGY_PENALTIES, PENALTIES
from pipeline.synapses import PSI_CONVENTIONS

__all__ = [
    "DEVICES",
    "MAX_NAME",
    "MAX_YAML_BYTES",
    "NAME",
    "NON_RESULT_KEYS",
    "OPTIMIZERS",
    "PATH",
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
_OPTIMIZER_STATES = {"adam": 2, "msgd": 1}  # values each optimizer keeps per weight (moments, momentum)
DEVICES = ("auto", "cpu", "cuda")
PENALTY_CHOICES = ("none", *PENALTIES, *ENERGY_PENALTIES)
# Keys that do not change a run's result: a finished run or checkpoint still matches when only these differ.
# The thread count does (it orders float sums; `pipeline.numerics`), and so does the device, by its kind.
NON_RESULT_KEYS = ("data_dir", "download")


class ConfigError(ValueError):
    """An invalid run configuration or parameter; the message is one line naming the key."""


@dataclass(frozen=True)
class Rule:
    """What one value may be: its type, bounds, allowed names, form, and whether it is (or may be) a list."""

    kind: type  # float (any real number), int, bool, str or dict
    minimum: float | None = None
    strict: bool = False  # minimum excluded
    maximum: float | None = None
    inclusive: bool = False  # maximum included (by default it is excluded)
    choices: tuple | None = None
    optional: bool = False  # None allowed
    listed: str = "no"  # "no": one value; "yes": a non-empty list of them; "maybe": either, made a list
    finite: bool = True  # a float must be finite (False: NaN and ±inf pass, e.g. a diverged run's energy)
    form: str = "text"  # of a str: "text" (any), "path" (a non-empty path), "name" (one safe path component)
    max_items: int = 1000  # of a list: the most values it may hold
    unique: bool = True  # of a list: no value twice (each indexes a result; names: not even alike)
    here: Callable[[Any], str | None] | None = None  # what this machine lacks for the value (None: nothing)


_TYPE_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string", dict: "a mapping"}
MAX_NAME = 64  # characters of a NAME
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?")  # no separator, no leading or trailing dot
_MAX_PATH = 4096  # characters of a PATH (Linux's PATH_MAX)


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _form_problem(text: str, form: str) -> str | None:
    """What keeps `text` from being a string of `form` (None: nothing)."""
    if form == "name" and not (len(text) <= MAX_NAME and _NAME.fullmatch(text)):
        return (f"must be a file or folder name: at most {MAX_NAME} letters, digits, '.', '_' or '-', starting with a "
                "letter or digit, not ending with '.'")
    if form == "path" and not (0 < len(text) <= _MAX_PATH and "\0" not in text):
        return f"must be a path of 1 to {_MAX_PATH} characters without NUL"
    return None


def _alike(value: Any, rule: Rule) -> Any:
    """What two values of a list must not share: the value, or for names its case-folded form (one file on a
    case-insensitive disk)."""
    return value.casefold() if rule.form == "name" else value


def _check_list(key: str, value: Any, rule: Rule, noun: str) -> list:
    where = f"{noun} '{key}'"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list (got {value!r})")
    if len(value) > rule.max_items:
        raise ConfigError(f"{where} holds {len(value):,} values, more than the {rule.max_items:,} allowed; "
                          "split the sweep")
    one = replace(rule, listed="no")
    items = [check(f"{key}[{i}]", v, one, noun) for i, v in enumerate(value)]
    if rule.unique:
        seen: dict[Any, int] = {}
        for i, item in enumerate(items):
            j = seen.setdefault(_alike(item, rule), i)
            if j != i:
                twice = "twice" if items[j] == item else f"and {item!r}, one name on a case-insensitive disk,"
                raise ConfigError(f"{where} holds {items[j]!r} {twice}; each value may appear once (each is one "
                                  "result or file): drop or rename the repeat")
    return items


def check(key: str, value: Any, rule: Rule, noun: str = "config key") -> Any:
    """`value` if it obeys `rule` (ints given for floats become floats), else a one-line ConfigError.

    The message names the value as `noun 'key'`, e.g. "config key 'p'" or "params key 'penalty.p'".
    """
    where = f"{noun} '{key}'"
    if rule.listed == "maybe" and not isinstance(value, list):  # the one place "one or several" becomes a list
        return [check(key, value, replace(rule, listed="no"), noun)]
    if rule.listed != "no":
        return _check_list(key, value, rule, noun)
    if value is None and rule.optional:
        return None
    if rule.kind is float:  # an int is a float; a bool is not a number
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and rule.finite and not math.isfinite(value):
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
        raise ConfigError(f"{where} must be {'>' if rule.strict else '>='} {_bound(rule.minimum)} (got {value})")
    if rule.maximum is not None and (value > rule.maximum if rule.inclusive else value >= rule.maximum):
        raise ConfigError(f"{where} must be {'<=' if rule.inclusive else '<'} {_bound(rule.maximum)} (got {value})")
    problem = _form_problem(value, rule.form) if rule.kind is str else None
    if problem:
        raise ConfigError(f"{where} {problem} (got {value!r})")
    lacking = rule.here(value) if rule.here else None
    if lacking:
        raise ConfigError(f"{where} is {value!r} but {lacking}")
    return float(value) if rule.kind is float else value


NAME = Rule(str, form="name")  # a string that becomes a file or folder name (a setting's, a profile's)
PATH = Rule(str, form="path")  # a string that is a path (a directory, a file)


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
    warm_start: str | None = None  # run id of a finished run in the same store whose final weights this run starts from

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
        _check_memory(self)

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
        return "cuda" if machine.cuda_available() else "cpu"
    return device.split(":")[0]


def _device_missing(device: str) -> str | None:
    """What this machine lacks to train on `device` (None: nothing)."""
    if device_kind(device) == "cuda" and not machine.cuda_available():
        return "this machine has no CUDA device (torch finds none); set it to 'auto' or 'cpu'"
    return None


@functools.cache
def _footprint(model: str, dataset: str, width: float) -> Footprint:
    info = INFO[dataset]
    return footprint(model, in_channels=info.in_channels, input_size=info.input_size, num_classes=info.num_classes,
                     width=width)


def _check_memory(cfg: RunConfig) -> None:
    """A one-line ConfigError when training `cfg` would need more memory than its device has here, estimated
    from the model's parameter and activation counts (`pipeline.models.footprint`) before anything is built."""
    need = _footprint(cfg.model, cfg.dataset, cfg.width).training_bytes(cfg.batch_size,
                                                                        _OPTIMIZER_STATES[cfg.optimizer])
    short = machine.memory_shortfall(need, device_kind(cfg.device))
    if short:
        raise ConfigError(f"config keys 'width' and 'batch_size': training {cfg.model} at width {cfg.width:g} on "
                          f"{cfg.dataset} in batches of {cfg.batch_size} {short}; lower width or batch_size")


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
_SEEDS = 2**32 - 1  # the largest seed NumPy takes
# key: the largest value a machine can honour (included); the memory a model needs is checked too.
_MAXIMA: dict[str, float] = {
    "split_seed": _SEEDS, "seed": _SEEDS, "limit_train": 10**9, "width": MAX_WIDTH, "batch_size": 65_536,
    "epochs": 10_000, "threads": 1_024, "loader_workers": 256,
}
_FORMS = {"data_dir": "path", "split_file": "path"}  # strings that are paths
_HERE = {"device": _device_missing}  # values this machine must have


@functools.cache
def field_rule(key: str) -> Rule:
    """The rule of RunConfig field `key`: its annotated type, its registry's names, its bounds, its form, and
    what this machine must have for it."""
    hint = get_type_hints(RunConfig)[key]
    optional = get_origin(hint) is Union or type(hint).__name__ == "UnionType"
    kind = next(a for a in get_args(hint) if a is not type(None)) if optional else hint
    minimum, strict = _MINIMA.get(key, (None, False))
    return Rule(kind, minimum, strict, maximum=_MAXIMA.get(key), inclusive=True, choices=_CHOICES.get(key),
                optional=optional, form=_FORMS.get(key, "text"), here=_HERE.get(key))


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.1 wants `1.0e-3`), as DVC's YAML 1.2 does."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


MAX_YAML_BYTES = 1 << 20  # a params or config file; params.yaml is a few kB


def load_yaml(path: Path | str, what: str) -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: {}); a one-line ConfigError naming `what` otherwise, or when
    the file is larger than MAX_YAML_BYTES (checked before it is parsed)."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{path} holds {size:,} bytes, more than the {MAX_YAML_BYTES:,} a file of {what} may; "
                              "shorten its lists")
        d = yaml.load(Path(path).read_text(), Loader=_YamlLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
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
