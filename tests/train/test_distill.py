"""Sequence-level knowledge distillation: training targets are the teacher's translations."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import tiny_config

from nmt.core.config import ConfigError, validate
from nmt.core.errors import NmtError
from nmt.data.corpus import read_parallel, split_file
from nmt.data.prepare import check_sources, prepare_store, validation_split
from nmt.data.store import TokenStore
from nmt.data.tokenizer import Tokenizer
from nmt.decode.translator import Translator
from nmt.train.distill import distilled_path, distilled_targets

QUIET = dict(log=lambda *a, **k: None, distill=distilled_targets)


def teacher_config(corpus, teacher, store_dir, **data):
    return tiny_config(corpus, data=dict(teacher=str(teacher), store_dir=str(store_dir), **data))


def stored(folder):
    """The store's pairs, decoded, and its tokenizer."""
    store, tokenizer = TokenStore(folder), Tokenizer(folder / "spm.model")
    src, tgt = store.pairs(range(len(store)))
    return tokenizer.decode(src), tokenizer.decode(tgt), tokenizer


def test_the_training_targets_are_the_teachers_translations(tmp_path, toy_corpus_dir,
                                                           trained_model_dir):
    config = teacher_config(toy_corpus_dir, trained_model_dir, tmp_path)
    folder = prepare_store(config, **QUIET)
    sources, references = read_parallel(split_file(toy_corpus_dir, "train", "de"),
                                        split_file(toy_corpus_dir, "train", "en"))
    expected = Translator.load(trained_model_dir).translate(sources)
    assert expected != references  # a tiny teacher: its translations differ from the references
    src, tgt, tokenizer = stored(folder)
    assert src == tokenizer.decode(tokenizer.encode(sources))
    assert tgt == tokenizer.decode(tokenizer.encode(expected))
    # validation keeps the human references: a student is chosen on the real task
    valid = validation_split(config, folder, tokenizer)
    assert valid.tgt_text == read_parallel(split_file(toy_corpus_dir, "val", "de"),
                                           split_file(toy_corpus_dir, "val", "en"))[1]
    assert distilled_path(folder / "distilled" / "00000", "en").read_text().splitlines() == expected


def test_keep_references_trains_on_both_targets_of_each_source(tmp_path, toy_corpus_dir,
                                                               trained_model_dir):
    config = teacher_config(toy_corpus_dir, trained_model_dir, tmp_path, keep_references=True)
    folder = prepare_store(config, **QUIET)
    sources, references = read_parallel(split_file(toy_corpus_dir, "train", "de"),
                                        split_file(toy_corpus_dir, "train", "en"))
    distilled = distilled_path(folder / "distilled" / "00000", "en").read_text().splitlines()
    assert distilled != references
    src, tgt, tokenizer = stored(folder)
    same = lambda texts: tokenizer.decode(tokenizer.encode(texts))  # noqa: E731
    assert src == same(sources + sources)
    assert tgt == same(references + distilled)


def test_keep_references_needs_a_teacher(toy_corpus_dir):
    with pytest.raises(ConfigError, match="data.keep_references .* needs data.teacher"):
        validate(tiny_config(toy_corpus_dir, data=dict(keep_references=True)))


def test_an_interrupted_preparation_keeps_the_teachers_translations(tmp_path, toy_corpus_dir,
                                                                     trained_model_dir,
                                                                     monkeypatch):
    config = teacher_config(toy_corpus_dir, trained_model_dir, tmp_path)
    folder = prepare_store(config, **QUIET)
    first = stored(folder)[1]
    (folder / "manifest.json").unlink()  # as if killed before the end
    (folder / "spm.model").unlink()

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher was asked again")

    monkeypatch.setattr(Translator, "load", no_teacher)
    assert stored(prepare_store(config, **QUIET))[1] == first


def test_distilled_targets_of_another_corpus_are_refused(tmp_path, toy_corpus_dir,
                                                         trained_model_dir):
    from nmt.data.prepare import store_folder

    config = teacher_config(toy_corpus_dir, trained_model_dir, tmp_path)
    cache = store_folder(config) / "distilled" / "00000"
    cache.mkdir(parents=True)
    distilled_path(cache, "en").write_text("one line\n")
    with pytest.raises(NmtError, match="distilled.en: 1 lines for"):
        prepare_store(config, **QUIET)


def test_a_teacher_is_checked_before_any_work(tmp_path, toy_corpus_dir, trained_model_dir):
    missing = teacher_config(toy_corpus_dir, tmp_path / "nowhere", tmp_path)
    with pytest.raises(NmtError, match="data.teacher .*nowhere: model directory not found"):
        check_sources(missing.data)
    config = teacher_config(toy_corpus_dir, trained_model_dir, tmp_path)
    config = config.replace(data=dataclasses.replace(config.data, src_lang="en", tgt_lang="de"))
    with pytest.raises(NmtError, match="translates de-en, not en-de"):
        prepare_store(config, **QUIET)


def test_a_teacher_cannot_be_combined_with_several_directions(toy_multi_corpus_dir,
                                                              trained_model_dir):
    config = tiny_config(toy_multi_corpus_dir, data=dict(pairs=("de-en", "en-de"),
                                                         teacher=str(trained_model_dir)))
    with pytest.raises(ConfigError, match="data.teacher distils one direction"):
        validate(config)


def test_the_model_card_says_where_the_targets_came_from(toy_corpus_dir):
    from nmt.train.release import targets

    assert "`models/teacher` (sequence-level distillation" in targets(
        teacher_config(toy_corpus_dir, "models/teacher", "stores"))
    assert "each pair twice, with its reference and with the translation by `models/teacher`" in \
        targets(tiny_config(toy_corpus_dir, data=dict(teacher="models/teacher",
                                                      keep_references=True)))
    assert targets(tiny_config(toy_corpus_dir)) == ""
