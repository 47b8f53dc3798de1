"""A user's own corpus, any language pair, no Multi30k in sight: train, release, evaluate."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, toy_corpus, write_lines

from nmt.cli import main
from nmt.data.store import TokenStore
from nmt.data.tokenizer import Tokenizer

TINY = ["--set", "model.d_model=64", "--set", "model.n_heads=2", "--set",
        "model.n_encoder_layers=1", "--set", "model.n_decoder_layers=1", "--set",
        "model.d_ff=128", "--set", "data.vocab_size=400", "--set", "train.threads=1",
        "--set", "train.max_tokens=2000", "--set", "train.warmup_steps=50",
        "--set", "data.heldout_pairs=50"]


def nmt(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "nmt", *args], capture_output=True,
                            text=True, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def dutch_english(folder, n=1500):
    src, tgt = toy_corpus(n, seed=11)
    # numbered, so that every pair is distinct (the toy corpus repeats itself)
    write_lines(folder / "corpus.nl", [f"{s[:-1]} nummer {i}." for i, s in enumerate(src)])
    write_lines(folder / "corpus.en", [f"{t[:-1]} number {i}." for i, t in enumerate(tgt)])


def test_two_files_of_dutch_english_train_release_and_evaluate(tmp_path):
    dutch_english(tmp_path)
    trained = nmt("train", "--src-file", "corpus.nl", "--tgt-file", "corpus.en", *TINY,
                  "--set", "train.max_epochs=8", cwd=tmp_path)
    assert "teacher" not in trained.stderr and "multi30k" not in trained.stderr
    assert "val: 50 pairs, drawn from the training corpus" in trained.stderr
    run = tmp_path / "runs" / "nl-en"
    record = json.loads((run / "data.json").read_text())
    assert record["test_split"] == "test" and record["eval_data"].endswith("heldout")
    nmt("release", "runs/nl-en", "--to", "models/nl-en", "--beam", "2", cwd=tmp_path)
    metrics = json.loads((tmp_path / "models/nl-en/metrics.json").read_text())
    assert metrics["val"]["sentences"] == metrics["test"]["sentences"] == 50
    assert metrics["test"]["bleu"] > 5  # it learnt something of the toy language
    nmt("evaluate", "--model", "models/nl-en", "--data", record["eval_data"], "--split", "test",
        "--out", "reports/nl-en", "--beam", "2", "--no-robustness", cwd=tmp_path)
    report = json.loads((tmp_path / "reports/nl-en/report.json").read_text())
    assert report["pair"] == "nl-en" and report["sentences"] == 50
    held = {line for split in ("val", "test") for line in
            (tmp_path / record["eval_data"] / f"{split}.nl").read_text().splitlines()}
    store = TokenStore(tmp_path / record["store"])
    trained_on = set(Tokenizer(run / "spm.model").decode(store.pairs(range(len(store)))[0]))
    assert len(held) == 100 and len(trained_on) == 1400 and not held & trained_on


def test_a_json_lines_dataset_trains_through_the_same_path(tmp_path):
    src, tgt = toy_corpus(300, seed=2)
    write_lines(tmp_path / "pairs.jsonl", [json.dumps({"translation": {"nl": s, "en": t}})
                                           for s, t in zip(src, tgt)])
    result = nmt("train", "--dataset", "pairs.jsonl", "--src-lang", "nl", "--tgt-lang", "en",
                 *TINY, "--set", "train.max_steps=3", "--set", "train.warmup_steps=1",
                 "--set", "data.dedupe=false", cwd=tmp_path)
    assert "cleaning: 300 pairs read, 300 kept" in result.stderr
    assert "3 updates done" in result.stderr
    assert (tmp_path / "runs/nl-en/last/model.safetensors").is_file()


def test_the_vocabulary_command_never_asks_a_teacher(tmp_path, toy_corpus_dir, monkeypatch):
    from nmt.decode.translator import Translator

    monkeypatch.setattr(Translator, "load", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("the teacher was asked")))
    out = tmp_path / "spm.model"
    assert main(["data", "vocab", "--set", f"data.corpus={toy_corpus_dir}", "--set",
                 f"data.teacher={ROOT / 'models/transformer-multi30k'}", "--set",
                 "data.vocab_size=400", "--out", str(out)]) == 0
    assert out.is_file()


def test_languages_come_from_the_suffixes_or_are_asked_for(tmp_path, capsys, monkeypatch):
    from nmt.cli import language_suffix

    assert [language_suffix(p) for p in ("c.nl", "c.nl.gz", "c.txt", "c.tsv.gz", "corpus")] == \
        ["nl", "nl", None, None, None]
    monkeypatch.chdir(tmp_path)
    write_lines(tmp_path / "a.txt", ["hallo"])
    write_lines(tmp_path / "b.txt", ["hello"])
    assert main(["train", "--src-file", "a.txt", "--tgt-file", "b.txt"]) == 2
    assert "give --src-lang" in capsys.readouterr().err
    assert main(["train", "--src-file", "a.txt", "--tgt-file", "b.txt", "--src-lang", "nl",
                 "--tgt-lang", "nl"]) == 2
    assert "both 'nl'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
