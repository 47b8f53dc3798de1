"""nmt release: the choices it makes on val, and the model directory it writes."""

from __future__ import annotations

import json

from nmt.decode.translator import Translator
from nmt.models.directory import verify_checksums
from nmt.train.release import release


def test_release_chooses_on_val_and_writes_a_loadable_model(trained_model_dir, toy_corpus_dir,
                                                           tmp_path):
    to = tmp_path / "models" / "tiny-de-en"
    release(trained_model_dir.parent, to, data=str(toy_corpus_dir), beam_size=2,
            log=lambda *a: None, penalties=(0.6, 1.5), clause_splits=(0, 10))
    metrics = json.loads((to / "metrics.json").read_text())
    config = json.loads((to / "config.json").read_text())
    assert metrics["selected"] in ("best", "averaged")
    chosen = max(metrics["candidates"], key=lambda k: metrics["candidates"][k]["bleu"])
    assert chosen == f"{metrics['selected']} lp={metrics['length_penalty']}"
    splits = {int(k): v for k, v in metrics["clause_split_candidates"].items()}
    assert set(splits) == {0, 10}
    eligible = [t for t in splits if splits[t]["plain"] >= splits[0]["plain"] - 0.2]
    assert config["decode"]["clause_split_tokens"] == max(
        eligible, key=lambda t: splits[t]["long_mean"])
    assert config["decode"]["length_penalty"] == metrics["length_penalty"]
    verify_checksums(to)
    card = (to / "README.md").read_text()
    assert "test_2016_flickr" in card and ("clause by clause" in card or "whole" in card)
    translator = Translator.load(to)
    assert translator.config.decode.clause_split_tokens == config["decode"]["clause_split_tokens"]
    assert translator.translate(["Ein hund läuft im park."])[0]


def test_a_release_replaces_a_model_only_when_told_and_a_better_one_only_when_told_twice(
        trained_model_dir, toy_corpus_dir, tmp_path):
    import pytest

    from nmt.core.errors import NmtError

    to = tmp_path / "models" / "tiny-de-en"
    options = dict(data=str(toy_corpus_dir), beam_size=1, log=lambda *a: None, penalties=(1.0,),
                   clause_splits=(0,))
    release(trained_model_dir.parent, to, **options)
    shipped = (to / "model.safetensors").read_bytes()
    with pytest.raises(NmtError, match="already exists; a release writes a new model directory"):
        release(trained_model_dir.parent, to, **options)  # refused before any work
    metrics = json.loads((to / "metrics.json").read_text())
    metrics["val"]["bleu"] = 1000.0  # the model in place scores higher on val (than any can)
    (to / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(NmtError, match="val BLEU 1000.00 is above this release's"):
        release(trained_model_dir.parent, to, replace=True, **options)
    assert json.loads((to / "metrics.json").read_text())["val"]["bleu"] == 1000.0
    release(trained_model_dir.parent, to, replace=True, replace_better=True, **options)
    assert json.loads((to / "metrics.json").read_text())["val"]["bleu"] <= 100.0
    assert (to / "model.safetensors").read_bytes() == shipped
    verify_checksums(to)
