"""One model for several directions: pairs from multi-parallel files, the target tag, serving."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import tiny_config, to_french, toy_corpus
from fastapi.testclient import TestClient

from nmt.core.config import ConfigError, apply_overrides, directions
from nmt.core.errors import NmtError
from nmt.data.corpus import load_directions
from nmt.data.prepare import check_sources, prepare_store, validation_split
from nmt.data.store import TokenStore
from nmt.data.tokenizer import Tokenizer
from nmt.evaluate.scoring import bleu
from serve.app import create_app
from serve.registry import Registry
from serve.settings import Settings

PAIRS = ("de-en", "de-fr", "en-de")


def test_a_config_with_several_pairs_loads_each_pair(toy_multi_corpus_dir, tmp_path):
    config = tiny_config(toy_multi_corpus_dir, data={"pairs": PAIRS})
    assert directions(config.data) == [("de", "en"), ("de", "fr"), ("en", "de")]
    loaded = load_directions(config.data, "val")
    src, tgt = toy_corpus(60, 1)
    assert list(loaded) == list(PAIRS)
    assert loaded["de-en"].src == src and loaded["de-en"].tgt == tgt
    assert loaded["de-fr"].tgt == [to_french(s) for s in src]
    assert loaded["en-de"].src == tgt and loaded["en-de"].tgt == src
    folder = prepare_store(config, log=lambda *a, **k: None)
    store, tokenizer = TokenStore(folder), Tokenizer(folder / "spm.model")
    valid = validation_split(config, folder, tokenizer)
    # every direction present, each source led by its target's tag, val interleaved
    ranges = list(store.direction_ranges())
    assert [pair for pair, _, _ in ranges] == list(PAIRS) and valid.pairs[:3] == list(PAIRS)
    for pair, start, end in ranges:
        sources, _ = store.pairs(range(start, end))
        assert {ids[0] for ids in sources} == {tokenizer.language_tag(pair.split("-")[1])}
    assert valid.tgt_text[1] == to_french(src[0]) and valid.tgt_text[2] == src[0]


def test_a_missing_language_file_names_the_file(toy_multi_corpus_dir, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(toy_multi_corpus_dir, corpus)
    (corpus / "val.fr.gz").unlink()
    config = tiny_config(corpus, data={"pairs": PAIRS})
    with pytest.raises(NmtError, match="val.fr"):
        check_sources(config.data)
    with pytest.raises(NmtError, match="val.fr"):
        load_directions(config.data, "val")


def test_pairs_are_checked_when_the_config_is_read():
    config = tiny_config(".")
    with pytest.raises(ConfigError, match="data.pairs"):
        apply_overrides(config, ["data.pairs=de-en,de-en"])
    with pytest.raises(ConfigError, match="no target tag for xx"):
        apply_overrides(config, ["data.pairs=de-xx"])
    with pytest.raises(ConfigError, match="data.pairs"):
        apply_overrides(config, ["data.pairs=de-en", "data.tsv_file=x.tsv"])
    assert apply_overrides(config, ["data.pairs=de-en, de-fr"]).data.pairs == ("de-en", "de-fr")


@pytest.fixture(scope="module")
def multilingual_model_dir(tmp_path_factory, toy_multi_corpus_dir):
    """A tiny Transformer for de-en and de-fr, trained until it translates both (about 30 s)."""
    from nmt.train.loop import train

    run = tmp_path_factory.mktemp("run") / "tiny-multi"
    torch.manual_seed(0)
    train(tiny_config(toy_multi_corpus_dir, data={"pairs": ("de-en", "de-fr")}, vocab_size=400,
                      max_epochs=12, eval_max_sentences=40), run)
    return run / "best"


def test_the_target_tag_steers_the_output_language(multilingual_model_dir):
    from nmt.decode.translator import Translator

    model = Translator.load(multilingual_model_dir, quantize="none")
    sources, english = toy_corpus(20, 7)
    french = [to_french(s) for s in sources]
    to_en = model.for_pair("de", "en").translate(sources, beam_size=2)
    to_fr = model.for_pair("de", "fr").translate(sources, beam_size=2)
    # each in the language its tag asked for (the other language's reference scores ~0)
    assert bleu(to_en, english)[0].score > 60 > 5 > bleu(to_en, french)[0].score, to_en
    assert bleu(to_fr, french)[0].score > 60 > 5 > bleu(to_fr, english)[0].score, to_fr
    with pytest.raises(NmtError, match="de-en, de-fr"):
        model.for_pair("en", "de")


def test_the_registry_picks_the_model_per_pair(multilingual_model_dir, trained_model_dir,
                                               tmp_path):
    from nmt.decode.translator import Translator

    shutil.copytree(multilingual_model_dir, tmp_path / "tiny-multi")
    shutil.copytree(trained_model_dir, tmp_path / "tiny-de-en")
    multi = Translator.load(tmp_path / "tiny-multi", quantize="none")
    bilingual = Translator.load(tmp_path / "tiny-de-en", quantize="none")
    with pytest.raises(NmtError, match="two models named"):
        Registry.load([trained_model_dir, multilingual_model_dir], quantize="none")
    registry = Registry()
    registry.add(multi, scores={"de-en": 50.0, "de-fr": 60.0})
    registry.add(bilingual, scores={"*": 70.0})  # better on de-en: it serves de-en
    assert registry.pick("de", "en").name == bilingual.name
    to_fr = registry.pick("de", "fr")
    assert to_fr.name == multi.name and to_fr.tgt_lang == "fr"
    assert registry.pick("de", "fr") is to_fr  # one translator per direction
    assert registry.pick("de", "en", name=multi.name).tgt_lang == "en"
    assert registry.pick("en", "de") is None
    with TestClient(create_app(Settings(processes=False), registry)) as client:
        assert client.get("/languages").json() == [
            {"code": "de", "name": "German", "targets": ["en", "fr"]},
            {"code": "en", "name": "English", "targets": []},
            {"code": "fr", "name": "French", "targets": []}]
        r = client.post("/translate", json={"q": "Ein hund läuft.", "source": "de",
                                            "target": "fr"})
        assert r.status_code == 200 and r.json()["model"] == multi.name
        assert r.json()["translatedText"] == "Un chien court."
        r = client.post("/translate", json={"q": "A dog runs.", "source": "en", "target": "de"})
        assert r.status_code == 400 and "served: de-en, de-fr" in r.json()["error"]


def test_nmt_translate_takes_the_direction(multilingual_model_dir, tmp_path, capsys):
    from nmt.cli import main

    source = tmp_path / "in.de"
    source.write_text("Ein hund läuft.\n", encoding="utf-8")
    model = str(multilingual_model_dir)
    assert main(["translate", "--model", model, "--source", "de", "--target", "fr",
                 "--input", str(source), "--quantize", "none"]) in (0, None)
    assert capsys.readouterr().out == "Un chien court.\n"
    assert main(["translate", "--model", model, "--target", "en", "--input", str(source),
                 "--quantize", "none"]) in (0, None)
    assert capsys.readouterr().out == "A dog runs.\n"
    assert main(["translate", "--model", model, "--source", "fr", "--target", "en",
                 "--input", str(source)]) == 2
    assert "translates de-en, de-fr, not fr-en" in capsys.readouterr().err


def test_release_and_evaluate_score_every_direction(multilingual_model_dir,
                                                    toy_multi_corpus_dir, tmp_path):
    import json
    import subprocess
    import sys

    from nmt.train.release import release
    from serve.registry import val_bleu

    to = tmp_path / "models" / "tiny-multi"
    release(multilingual_model_dir.parent, to, data=str(toy_multi_corpus_dir), beam_size=2,
            log=lambda *a: None, penalties=(1.0,), clause_splits=(0,))
    metrics = json.loads((to / "metrics.json").read_text())
    assert set(metrics["pairs"]) == {"de-en", "de-fr"}
    by_pair = val_bleu(to)
    assert by_pair == {p: metrics["pairs"][p]["val"]["bleu"] for p in ("de-en", "de-fr")}
    assert metrics["val"]["bleu"] == pytest.approx(sum(by_pair.values()) / 2, abs=0.01)
    card = (to / "README.md").read_text()
    assert "de → en, de → fr" in card and "| val de-fr |" in card and "| val, mean |" in card
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "nmt", "evaluate", "--model", str(to),
                             "--data", str(toy_multi_corpus_dir), "--beam", "2",
                             "--no-robustness", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for pair in ("de-en", "de-fr"):
        report = json.loads((out / pair / "report.json").read_text())
        assert report["pair"] == pair and report["systems"]["tiny-multi"]["bleu"] > 60
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["pair"], r["system"]) for r in summary] == [("de-en", "tiny-multi"),
                                                           ("de-fr", "tiny-multi")]
    assert summary[1]["bleu"] == json.loads((out / "de-fr" / "report.json").read_text())[
        "systems"]["tiny-multi"]["bleu"]
    assert "| de-fr | tiny-multi |" in (out / "summary.md").read_text()


def test_export_refuses_a_multilingual_model(multilingual_model_dir, tmp_path, capsys):
    from nmt.cli import main

    assert main(["export", "--format", "ctranslate2", str(multilingual_model_dir),
                 str(tmp_path / "ct2")]) == 2
    assert "multilingual" in capsys.readouterr().err and not (tmp_path / "ct2").exists()
