"""Sequence-level knowledge distillation: training targets are the teacher's translations."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import tiny_config

from nmt.core.config import ConfigError, validate
from nmt.core.errors import NmtError
from nmt.data.corpus import check_sources, load_split
from nmt.data.prepare import prepare_data
from nmt.decode.translator import Translator
from nmt.train.distill import distilled_path, distilled_targets


def teacher_config(corpus, teacher):
    return tiny_config(corpus, data=dict(teacher=str(teacher)))


def test_the_training_targets_are_the_teachers_translations(tmp_path, toy_corpus_dir,
                                                           trained_model_dir):
    config = teacher_config(toy_corpus_dir, trained_model_dir)
    _, train, valid = prepare_data(config, tmp_path, log=lambda *a, **k: None, distill=distilled_targets)
    sources = load_split(config.data, "train")
    expected = Translator.load(trained_model_dir).translate(sources.src)
    assert expected != sources.tgt  # a tiny teacher: its translations differ from the references
    assert train.src_text == sources.src and train.tgt_text == expected
    # validation keeps the human references: a student is chosen on the real task
    assert valid.tgt_text == load_split(config.data, "val").tgt
    assert distilled_path(tmp_path, "en").read_text().splitlines() == expected


def test_keep_references_trains_on_both_targets_of_each_source(tmp_path, toy_corpus_dir,
                                                               trained_model_dir):
    config = tiny_config(toy_corpus_dir, data=dict(teacher=str(trained_model_dir),
                                                   keep_references=True))
    _, train, _ = prepare_data(config, tmp_path, log=lambda *a, **k: None, distill=distilled_targets)
    sources = load_split(config.data, "train")
    distilled = distilled_path(tmp_path, "en").read_text().splitlines()
    assert distilled != sources.tgt
    assert train.src_text == sources.src + sources.src
    assert train.tgt_text == sources.tgt + distilled


def test_keep_references_needs_a_teacher(toy_corpus_dir):
    with pytest.raises(ConfigError, match="data.keep_references .* needs data.teacher"):
        validate(tiny_config(toy_corpus_dir, data=dict(keep_references=True)))


def test_a_run_reads_its_distilled_targets_back_without_the_teacher(tmp_path, toy_corpus_dir,
                                                                    trained_model_dir, monkeypatch):
    config = teacher_config(toy_corpus_dir, trained_model_dir)
    _, first, _ = prepare_data(config, tmp_path, log=lambda *a, **k: None, distill=distilled_targets)

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher was asked again")

    monkeypatch.setattr(Translator, "load", no_teacher)
    _, again, _ = prepare_data(config, tmp_path, log=lambda *a, **k: None, distill=distilled_targets)
    assert again.tgt_ids == first.tgt_ids


def test_distilled_targets_of_another_corpus_are_refused(tmp_path, toy_corpus_dir,
                                                         trained_model_dir):
    distilled_path(tmp_path, "en").write_text("one line\n")
    config = teacher_config(toy_corpus_dir, trained_model_dir)
    with pytest.raises(NmtError, match="distilled.en: 1 lines for"):
        prepare_data(config, tmp_path, log=lambda *a, **k: None, distill=distilled_targets)


def test_a_teacher_is_checked_before_any_work(tmp_path, toy_corpus_dir, trained_model_dir):
    missing = teacher_config(toy_corpus_dir, tmp_path / "nowhere")
    with pytest.raises(NmtError, match="data.teacher .*nowhere: model directory not found"):
        check_sources(missing.data)
    other_direction = dataclasses.replace(
        teacher_config(toy_corpus_dir, trained_model_dir).data, src_lang="en", tgt_lang="de")
    config = dataclasses.replace(teacher_config(toy_corpus_dir, trained_model_dir),
                                 data=other_direction)
    with pytest.raises(NmtError, match="translates de-en, not en-de"):
        prepare_data(config, tmp_path, log=lambda *a, **k: None, distill=distilled_targets)


def test_a_teacher_cannot_be_combined_with_several_directions(toy_multi_corpus_dir,
                                                              trained_model_dir):
    config = tiny_config(toy_multi_corpus_dir, data=dict(pairs=("de-en", "en-de"),
                                                         teacher=str(trained_model_dir)))
    with pytest.raises(ConfigError, match="data.teacher distils one direction"):
        validate(config)


def test_the_model_card_says_where_the_targets_came_from(toy_corpus_dir):
    from nmt.train.release import targets

    assert "`models/teacher` (sequence-level distillation" in targets(
        teacher_config(toy_corpus_dir, "models/teacher"))
    assert "each pair twice, with its reference and with the translation by `models/teacher`" in \
        targets(tiny_config(toy_corpus_dir, data=dict(teacher="models/teacher",
                                                      keep_references=True)))
    assert targets(tiny_config(toy_corpus_dir)) == ""
