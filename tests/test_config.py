"""Run configuration: names, types, ranges, YAML files and CLI flags, each error in one line."""
import argparse

import pytest

from pipeline.cli import add_config_arguments, config_from_args
from pipeline.config import NON_RESULT_KEYS, PENALTY_CHOICES, ConfigError, RunConfig, device_kind, load_config_file
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
