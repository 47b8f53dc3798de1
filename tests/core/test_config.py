import json

import pytest

from nmt.cli import main
from nmt.core.config import Config, ConfigError, apply_overrides, config_from_dict, load_config

ROOT_CONFIGS = ["configs/transformer-de-en.toml", "configs/rnn-de-en.toml"]


@pytest.mark.parametrize("path", ROOT_CONFIGS)
def test_shipped_configs_load(path):
    from conftest import ROOT

    config = load_config(ROOT / path)
    assert config.data.src_lang == "de" and config.data.tgt_lang == "en"
    assert config.name == path.split("/")[-1].removesuffix(".toml")


def test_overrides_are_type_checked():
    config = apply_overrides(Config(), ["train.max_epochs=7", "model.dropout=0.25",
                                        "model.pre_norm=false", "data.src_lang=fr"])
    assert config.train.max_epochs == 7 and config.model.dropout == 0.25
    assert config.model.pre_norm is False and config.data.src_lang == "fr"
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(Config(), ["train.max_epochs=seven"])


def test_unknown_key_names_it_and_lists_valid_ones():
    with pytest.raises(ConfigError) as error:
        apply_overrides(Config(), ["train.epochs=3"])
    message = str(error.value)
    assert "'train.epochs'" in message and "max_epochs" in message and "lr" in message


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nd_modle = 128\n")
    with pytest.raises(ConfigError, match="d_modle"):
        load_config(path)


def test_impossible_values_are_rejected():
    with pytest.raises(ConfigError, match="divisible"):
        apply_overrides(Config(), ["model.d_model=100", "model.n_heads=3"])
    with pytest.raises(ConfigError, match="dropout"):
        apply_overrides(Config(), ["model.dropout=-0.1"])
    with pytest.raises(ConfigError, match="train.device"):
        apply_overrides(Config(), ["train.device=tpu"])
    with pytest.raises(ConfigError, match="train.max_steps"):  # linear decay needs an end
        apply_overrides(Config(), ["train.lr_schedule=linear"])
    with pytest.raises(ConfigError, match="lr_schedule"):
        apply_overrides(Config(), ["train.lr_schedule=cosine"])


def test_json_round_trip():
    config = apply_overrides(Config(name="x"), ["train.lr=0.002", "model.arch=rnn"])
    again = config_from_dict(json.loads(config.to_json()))
    assert again == config


def test_cli_unknown_set_key_exits_2(capsys):
    code = main(["train", "--config", "configs/transformer-de-en.toml", "--set", "train.nope=1"])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and err.count("\n") == 1
