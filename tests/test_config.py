"""Run configuration: names, types, ranges, YAML files and CLI flags, each error in one line."""
import argparse
import math

import pytest

from pipeline.cli import add_config_arguments, config_from_args
from pipeline.config import (NON_RESULT_KEYS, PATH, PENALTY_CHOICES, ConfigError, Rule, RunConfig, check, device_kind,
                             field_rule, load_config_file)
from pipeline.data import DATASETS
from pipeline.models import MODELS
from pipeline.neuron import SURROGATES
from pipeline.penalties import ENERGY_PENALTIES, PENALTIES


def test_defaults_are_valid_and_round_trip():
    cfg = RunConfig()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_names_come_from_the_registries():
    cfg = RunConfig
    for key, names in (("dataset", DATASETS), ("model", MODELS), ("surrogate", SURROGATES)):
        for name in names:
            assert getattr(cfg.from_dict({key: name}), key) == name
    assert PENALTY_CHOICES == ("none", *PENALTIES, *ENERGY_PENALTIES)


@pytest.mark.parametrize("d,message", [
    ({"lamda": 1.0}, "unknown config key 'lamda'; allowed keys: dataset, "),
    ({"p": 0.5}, "config key 'p' must be >= 1 (got 0.5)"),
    ({"penalty": "foo"}, "config key 'penalty' must be one of none, syn, total, balance, energy_paper, "
                          "energy_lemaire2022, energy_loihi, energy_spinnaker, energy_spinnaker2 (got 'foo')"),
    ({"dataset": "mnist"}, "config key 'dataset' must be one of digits, fashion_mnist, cifar10, cifar100"),
    ({"model": "vgg16"}, "config key 'model' must be one of cnn7, "),
    ({"optimizer": "rmsprop"}, "config key 'optimizer' must be one of adam, msgd"),
    ({"surrogate": "tanh"}, "config key 'surrogate' must be one of s3nn, linear, sigmoid"),
    ({"lr": -0.1}, "config key 'lr' must be > 0"),
    ({"weight_decay": -1e-4}, "config key 'weight_decay' must be >= 0"),
    ({"penalty": "syn", "lam": -1.0}, "config key 'lam' must be >= 0"),
    ({"penalty": "syn", "lam_norm": -1.0}, "config key 'lam_norm' must be >= 0"),
    ({"lr": "1e-3"}, "config key 'lr' must be a number (got str '1e-3')"),
    ({"lr": True}, "config key 'lr' must be a number (got bool True)"),
    ({"epochs": 2.0}, "config key 'epochs' must be an integer"),
    ({"randaugment": 1}, "config key 'randaugment' must be true or false"),
    ({"limit_train": "all"}, "config key 'limit_train' must be an integer or null"),
    ({"bn_decay": 2}, "config key 'bn_decay' must be one of 0, 1 (got 2)"),
    ({"lr": float("inf")}, "config key 'lr' must be finite"),
    ({"penalty": "syn", "lam": 1.0, "lam_norm": 8.0}, "config keys 'lam' and 'lam_norm' exclude each other"),
    ({"lam_norm": 8.0}, "config key 'penalty' is 'none'"),
])
def test_bad_values_are_one_line_errors_naming_the_key(d, message):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(d)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_int_is_accepted_for_float_and_stored_as_float():
    cfg = RunConfig.from_dict({"penalty": "syn", "lam_norm": 8, "p": 2, "limit_train": None})
    assert cfg.lam_norm == 8.0 and isinstance(cfg.lam_norm, float) and isinstance(cfg.p, float)


def test_identity_leaves_out_run_irrelevant_keys():
    a = RunConfig(data_dir="a", device="auto")
    b = RunConfig(data_dir="b", download=False, device=device_kind("auto"))
    assert a.identity() == b.identity() and not set(NON_RESULT_KEYS) & set(a.identity())
    assert a.identity() != RunConfig(seed=1).identity()
    # the thread count orders float sums (pipeline.numerics), the device kind picks the kernels
    assert a.identity() != RunConfig(threads=2).identity()
    assert RunConfig(device="cpu").identity()["device"] == "cpu"


def test_yaml_file_reads_exponents_as_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 5e-5\npenalty: syn\np: 2\nlam_norm: 16\nlimit_train: null\n")
    cfg = RunConfig.from_dict(load_config_file(path))
    assert (cfg.lr, cfg.weight_decay, cfg.p, cfg.lam_norm, cfg.limit_train) == (1e-3, 5e-5, 2.0, 16.0, None)
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config_file(path)


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-3\nepochs: 7\nrandaugment: true\n")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    ns = parser.parse_args(["--config", str(path), "--epochs", "3", "--no-randaugment", "--lam-norm", "8",
                            "--penalty", "syn", "--limit-train", "none"])
    cfg = config_from_args(ns)
    assert (cfg.lr, cfg.epochs, cfg.randaugment, cfg.lam_norm, cfg.penalty) == (1e-3, 3, False, 8.0, "syn")


@pytest.mark.parametrize("value,rule,message", [
    ([1, 2.0, 1.0], Rule(float, listed="yes"), "params key 'k' holds 1.0 twice; each value may appear once"),
    (["a", "a"], Rule(str, listed="yes"), "params key 'k' holds 'a' twice"),
    (list(range(6)), Rule(int, listed="yes", max_items=5), "params key 'k' holds 6 values, more than the 5 allowed"),
    (5, Rule(int, maximum=5), "params key 'k' must be < 5 (got 5)"),
    (6, Rule(int, maximum=5, inclusive=True), "params key 'k' must be <= 5 (got 6)"),
    (math.inf, Rule(float), "params key 'k' must be finite (got inf)"),
    ("", PATH, "params key 'k' must be a path of 1 to 4096 characters without NUL (got '')"),
    ("a\0b", PATH, "params key 'k' must be a path of 1 to 4096 characters without NUL"),
    ("x", Rule(str, here=lambda v: "this machine lacks it"), "params key 'k' is 'x' but this machine lacks it"),
])
def test_rules_refuse_in_one_line(value, rule, message):
    with pytest.raises(ConfigError) as e:
        check("k", value, rule, "params key")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_rules_pass_what_they_allow():
    assert check("k", [1, 2], Rule(float, listed="yes")) == [1.0, 2.0]
    assert check("k", [1, 1], Rule(int, listed="yes", unique=False)) == [1, 1]
    assert check("k", 5, Rule(int, maximum=5, inclusive=True)) == 5
    assert math.isnan(check("k", math.nan, Rule(float, 0, finite=False)))
    assert check("k", "data/../x", PATH) == "data/../x"  # a path may go anywhere; a name may not


def test_every_config_number_has_an_upper_bound():
    for key in ("split_seed", "limit_train", "width", "batch_size", "epochs", "seed", "threads", "loader_workers"):
        rule = field_rule(key)
        assert rule.maximum is not None and rule.inclusive, key
        with pytest.raises(ConfigError, match=f"^config key '{key}' must be <= "):
            RunConfig.from_dict({key: rule.kind(rule.maximum) + 1})


def test_an_undecodable_yaml_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(b"\xb8\xff: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config_file(path)
    assert str(e.value).startswith(f"{path} is unreadable: 'utf-8' codec can't decode byte 0xb8")
