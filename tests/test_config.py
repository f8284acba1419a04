"""descend.config directly: merging, validation, TOML loading, every table's names and the builders."""
import copy
import re

import numpy as np
import pytest

from descend import config, nn, optim, train
from descend.optim import schedules
from descend.config import ConfigError


def test_merge_refuses_an_unknown_key_naming_it_and_the_known_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epochz'") as e:
        config.merge(config.DEFAULT_CONFIG, {"train": {"epochz": 3}})
    for known in config.DEFAULT_CONFIG["train"]:
        assert repr(known) in str(e.value), known
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'; known keys here: \['data', 'model'"):
        config.merge(config.DEFAULT_CONFIG, {"trian": {}})
    with pytest.raises(ConfigError, match=r"config key 'train' must be a table \[train\]"):
        config.merge(config.DEFAULT_CONFIG, {"train": 3})


def test_merge_leaves_its_inputs_alone_and_passes_optimizer_keys_through():
    before = copy.deepcopy(config.DEFAULT_CONFIG)
    cfg = config.merge(config.DEFAULT_CONFIG, {"optimizer": {"name": "sgd", "momentum": 0.9}, "train": {"epochs": 2}})
    assert config.DEFAULT_CONFIG == before
    assert cfg["optimizer"] == {"name": "sgd", "lr": 1e-3, "momentum": 0.9} and cfg["train"]["epochs"] == 2
    assert cfg["train"]["batch_size"] == before["train"]["batch_size"]


@pytest.mark.parametrize("key, value", [
    ("data.val_fraction", 1.5), ("data.standardize", "yes"), ("model.hidden", [0]), ("model.conv", [8, -1]),
    ("model.dropout", 1.0), ("train.batch_size", "half"), ("train.epochs", 0), ("train.patience", True),
    ("train.divergence", 1.0), ("train.l2", -0.1),
])
def test_check_config_refuses_a_bad_value_with_the_rule(key, value):
    section, name = key.split(".")
    cfg = config.merge(config.DEFAULT_CONFIG, {section: {name: value}})
    rule = config.RULES[key][1]
    with pytest.raises(ConfigError, match=re.escape(f"{key} = {value!r} is invalid: it must be {rule}")):
        config.check_config(cfg)


def test_check_config_accepts_the_defaults_and_resolve_layers_overrides_in_order():
    assert config.check_config(copy.deepcopy(config.DEFAULT_CONFIG)) == config.DEFAULT_CONFIG
    cfg = config.resolve({"train": {"epochs": 5, "seed": 1}}, {"train": {"epochs": 7}})
    assert cfg["train"]["epochs"] == 7 and cfg["train"]["seed"] == 1
    assert config.resolve() == config.DEFAULT_CONFIG and config.resolve() is not config.DEFAULT_CONFIG
    with pytest.raises(ConfigError, match="train.epochs = -1 is invalid"):
        config.resolve({"train": {"epochs": -1}})


def test_load_config_reads_toml_and_names_the_file_and_line_of_a_malformed_one(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[optimizer]\nname = "sgd"\nlr = 0.1\n')
    assert config.load_config(good) == {"optimizer": {"name": "sgd", "lr": 0.1}}
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nepochs = 3\nseed = = 1\n')
    with pytest.raises(ConfigError, match=rf"config file {re.escape(str(bad))} is not valid TOML: .*line 3"):
        config.load_config(bad)
    with pytest.raises(ConfigError, match=r"nowhere.toml does not exist"):
        config.load_config(tmp_path / "nowhere.toml")


def test_every_activation_and_initializer_builds():
    for name, cls in config.activations().items():
        assert isinstance(cls(), nn.Module), name
    for name, init in config.initializers().items():
        if init is None:  # "auto": the layer picks He or Xavier itself
            continue
        w = init((4, 3), rng=np.random.default_rng(0))
        assert w.shape == (4, 3) and w.dtype == np.float32 and np.isfinite(w).all(), name


def test_every_optimizer_builds_from_its_name():
    for name, cls in config.optimizers().items():
        opt = config.build_optimizer(config.merge(config.DEFAULT_CONFIG, {"optimizer": {"name": name, "lr": 0.1}}))
        assert type(opt) is cls and isinstance(opt, optim.Optimizer) and opt.lr == 0.1, name
    with pytest.raises(ConfigError, match=r"optimizer.name = 'nope' is not known; choose one of \['adagrad'"):
        config.build_optimizer(config.merge(config.DEFAULT_CONFIG, {"optimizer": {"name": "nope"}}))


SCHEDULE_ARGS = {"constant": {"lr": 0.1}, "inverse_time": {"decay_rate": 1.0}, "exponential": {"rate": 0.9},
                 "inverse_sqrt": {"k": 1.0}, "step": {"step_size": 2}, "piecewise": {"boundaries": [2],
                 "values": [0.1, 0.01]}, "warmup": {"warmup": 5}, "cosine": {"total": 10},
                 "warmup_cosine": {"warmup": 2, "total": 10}}


def test_every_schedule_builds_from_its_name():
    assert set(SCHEDULE_ARGS) == set(config.schedules())
    for name, args in SCHEDULE_ARGS.items():
        cfg = config.merge(config.DEFAULT_CONFIG, {"schedule": {"name": name, **args}})
        s = config.build_schedule(cfg)
        assert callable(s) and s.unit in ("epoch", "step") and np.isfinite(s(1)), name
    assert config.build_schedule(config.DEFAULT_CONFIG) is None  # a constant rate needs no schedule
    assert config.build_schedule(config.merge(config.DEFAULT_CONFIG, {"schedule": {"name": "cosine", "total": 4}})) \
        == schedules.Cosine(lr=1e-3, total=4)  # lr from the [optimizer] table
    with pytest.raises(ConfigError, match=r"\[schedule\] .*total"):
        config.build_schedule(config.merge(config.DEFAULT_CONFIG, {"schedule": {"name": "cosine", "total": 0}}))


def test_every_stopping_rule_builds_and_only_the_switched_on_ones_are_used():
    assert config.build_stopping(config.merge(config.DEFAULT_CONFIG, {"train": {"patience": 0}})) == []
    on = {"patience": 3, "min_loss_change": 1e-4, "min_param_change": 1e-6, "time_limit": 60.0}
    assert set(on) == set(config.stopping())
    rules = config.build_stopping(config.merge(config.DEFAULT_CONFIG, {"train": on}))
    assert [type(r) for r in rules] == [train.EarlyStopping, train.SmallLossChange, train.SmallParamChange,
                                        train.TimeLimit]
    assert rules[0].patience == 3 and rules[0].monitor == "val_loss"


def test_every_dataset_loads():
    for name, loader in config.datasets().items():
        ds = loader(seed=0)
        assert len(ds.X_train) == len(ds.y_train) > 0 and ds.num_classes >= 2, name
    for name in config.IMAGE_DATASETS:
        assert config.datasets()[name](seed=0, images=True).X_train.ndim >= 3, name


def test_build_model_equals_the_network_built_by_hand():
    cfg = config.merge(config.DEFAULT_CONFIG, {"model": {"hidden": [16, 8], "activation": "tanh", "init": "xavier",
                                                         "dropout": 0.25, "batch_norm": True}})
    model = config.build_model(cfg, 12, 3, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    xavier = nn.init.xavier_normal
    by_hand = nn.Sequential(nn.Linear(12, 16, init=xavier, rng=rng), nn.BatchNorm1d(16), nn.Tanh(),
                            nn.Dropout(0.25, rng=rng), nn.Linear(16, 8, init=xavier, rng=rng), nn.BatchNorm1d(8),
                            nn.Tanh(), nn.Dropout(0.25, rng=rng), nn.Linear(8, 3, init=xavier, rng=rng))
    assert [type(m) for m in model] == [type(m) for m in by_hand]
    got, want = dict(model.named_parameters()), dict(by_hand.named_parameters())
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name].data, want[name].data, err_msg=name)


def test_build_model_with_conv_blocks_on_images():
    cfg = config.merge(config.DEFAULT_CONFIG, {"model": {"conv": [4], "hidden": [8]}})
    model = config.build_model(cfg, (1, 8, 8), 10, np.random.default_rng(0))
    assert [type(m).__name__ for m in model] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU",
                                                 "Linear"]
    assert model(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"model.conv needs image-shaped input"):
        config.build_model(cfg, 64, 10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"model.activation = 'swish' is not known"):
        config.build_model(config.merge(cfg, {"model": {"activation": "swish"}}), (1, 8, 8), 10,
                           np.random.default_rng(0))


def test_prepare_data_splits_and_standardizes_as_configured():
    X, y, Xv, yv, Xte, yte, C, pre = config.prepare_data(config.merge(config.DEFAULT_CONFIG,
                                                                      {"data": {"dataset": "iris"}}))
    assert C == 3 and len(X) + len(Xv) == 120 and len(Xte) == len(yte) == 30 and pre is not None
    no_scaling = config.merge(config.DEFAULT_CONFIG, {"data": {"dataset": "iris", "standardize": False}})
    assert config.prepare_data(no_scaling)[-1] is None
    with pytest.raises(ConfigError, match=r"data.dataset = 'iris' has none"):
        config.prepare_data(config.merge(no_scaling, {"model": {"conv": [4]}}))
