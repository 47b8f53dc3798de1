"""Bad input refused before it does harm: config values, resume overrides, run folders, state
manifests, damaged model directories, the Python API and the CLI's help."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, tiny_config
from test_resume import run_train, write_config

from nmt.cli import RESUMABLE, build_parser
from nmt.core.config import RULES, SECTIONS, ConfigError, _field_types, load_config
from nmt.core.errors import NmtError
from nmt.models.directory import CHECKSUMS, read_model_config
from nmt.train.checkpoint import save_training_state

TRANSFORMER = ROOT / "configs" / "transformer-de-en.toml"


def test_every_config_field_has_a_rule():
    for name, cls in SECTIONS.items():
        assert set(RULES[name]) == set(_field_types(cls)), name


@pytest.mark.parametrize("override", [
    "train.lr=inf", "train.lr=nan", "train.log_every_steps=0", "model.max_positions=0",
    "model.max_positions=-5", "train.threads=-1", "train.adam_beta1=2", "train.adam_eps=-1",
    "train.weight_decay=-1", "data.max_tokens_per_sentence=1", "train.max_epochs=-1",
    "decode.max_len_ratio=-1", "decode.beam_size=0", "train.clip_norm=nan",
    "data.join_fraction=1.5", "data.src_lang=", "model.max_positions=100",
])
def test_bad_values_give_one_line_naming_the_key(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as error:
        load_config(TRANSFORMER, [override])
    message = str(error.value)
    assert "\n" not in message and key in message


def test_bad_value_from_the_cli_exits_2_with_one_line(tmp_path, capsys):
    from nmt.cli import main

    assert main(["train", "--config", str(TRANSFORMER), "--set", "train.lr=inf",
                 "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.lr" in err
    assert not (tmp_path / "run").exists()


def finished_run(tmp_path, toy_corpus_dir, epochs=1):
    config = write_config(tmp_path, toy_corpus_dir, epochs=epochs)
    run = tmp_path / "run"
    result = run_train("--config", str(config), "--run-dir", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return run


def test_resume_guards(tmp_path, toy_corpus_dir):
    run = finished_run(tmp_path, toy_corpus_dir)
    saved = (run / "config.json").read_text()
    refused = run_train("--resume", str(run), "--set", "model.d_model=64", cwd=tmp_path)
    assert refused.returncode == 2 and "model.d_model" in refused.stderr
    assert "Traceback" not in refused.stderr and (run / "config.json").read_text() == saved
    # a finished run is extended by a larger budget, and its metrics have no duplicate rows
    extended = run_train("--resume", str(run), "--set", "train.max_epochs=2", cwd=tmp_path)
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert "extending a finished run" in extended.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r["epoch"] for r in rows if r["kind"] == "eval"]
    assert evals == [1, 2]
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert len(train_steps) == len(set(train_steps))
    assert json.loads((run / "config.json").read_text())["train"]["max_epochs"] == 2
    commands = (run / "command.txt").read_text().splitlines()
    assert commands[0].startswith("nmt train --config") and "--resume" in commands[1]
    # a folder without its state manifest is an error, not a silent restart
    (run / "states.json").unlink()
    missing = run_train("--resume", str(run), cwd=tmp_path)
    assert missing.returncode == 2 and "states.json" in missing.stderr


def test_manifest_entries_are_names_inside_the_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for entries in ([{"file": "../victim.txt", "step": 1, "sha256": "0" * 64}],
                    [{"file": "state-00000001.pt", "step": 1}]):
        (run / "states.json").write_text(json.dumps({"states": entries}))
        for step in (2, 3, 4):
            with pytest.raises(NmtError, match="states.json: invalid entry"):
                save_training_state(run, {"x": 1}, step)
    assert victim.read_text() == "keep me"


def test_flipped_byte_in_a_model_directory_names_the_file(trained_model_dir, tmp_path):
    import shutil

    from nmt.decode.translator import Translator

    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    assert (copy / CHECKSUMS).is_file()
    read_model_config(copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10
    weights.write_bytes(bytes(data))
    with pytest.raises(NmtError, match="model.safetensors: checksum mismatch"):
        Translator.load(copy)


def test_translator_refuses_a_string_and_a_bad_beam(trained_model_dir):
    from nmt.decode.translator import Translator

    translator = Translator.load(trained_model_dir)
    with pytest.raises(TypeError):
        translator.translate("Ein hund läuft.")
    for beam in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            translator.translate(["Ein hund läuft."], beam_size=beam)


def test_non_finite_loss_stops_training_and_writes_no_model(tmp_path, toy_corpus_dir, monkeypatch):
    import nmt.train.loop as training

    monkeypatch.setattr(training, "label_smoothed_loss",
                        lambda logits, target, smoothing: logits.sum() * float("nan"))
    run = tmp_path / "run"
    with pytest.raises(NmtError, match="the loss became nan at step 1"):
        training.train(tiny_config(toy_corpus_dir, max_epochs=1), run)
    assert not (run / "best").exists() and not (run / "last").exists()


def test_every_option_help_names_its_default():
    parser = build_parser()
    subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"][0]
    for name in ("train", "translate", "evaluate", "release"):
        text = subparsers.choices[name].format_help()
        assert "(default:" in text, name
    assert "default: 4" in subparsers.choices["translate"].format_help()
    assert all(key.startswith("train.") for key in RESUMABLE)


def test_a_new_run_never_takes_over_a_folder_it_did_not_write(tmp_path, toy_corpus_dir):
    """A new run in a folder holding other files deleted best/ and last/ and reused a foreign
    spm.model; now it is refused in one line naming what is there, and nothing is touched."""
    config = write_config(tmp_path, toy_corpus_dir)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "spm.model").write_bytes(b"someone else's vocabulary")
    (folder / "notes.txt").write_text("keep me")
    refused = run_train("--config", str(config), "--run-dir", str(folder), cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "not empty (notes.txt, spm.model)" in refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "spm.model"]
    assert (folder / "spm.model").read_bytes() == b"someone else's vocabulary"


@pytest.mark.parametrize("problem, expected", [
    ("file", "is a file, not a run folder"),
    ("unwritable", "/proc/nmt-run: No such file or directory"),
    ("absolute name", "name = '/tmp/elsewhere': must be a plain folder name"),
    ("nested", "cannot parse: nested too deeply"),
])
def test_bad_run_folders_and_configs_are_one_line(problem, expected, tmp_path, toy_corpus_dir):
    config, args = write_config(tmp_path, toy_corpus_dir), []
    if problem == "file":
        (tmp_path / "run").write_text("")
        args = ["--run-dir", str(tmp_path / "run")]
    elif problem == "unwritable":
        args = ["--run-dir", "/proc/nmt-run"]
    elif problem == "absolute name":
        config.write_text(config.read_text().replace('name = "tiny"', 'name = "/tmp/elsewhere"'))
    else:
        config.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_train("--config", str(config), *args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
