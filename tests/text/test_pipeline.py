"""The input pipeline: each sentence prepared once for the model and its translation finished
as typed, with each step switchable (nmt/text/pipeline.py)."""

from __future__ import annotations

import dataclasses

import pytest

from nmt.text.passthrough import PLACEHOLDERS
from nmt.text.pieces import Translation
from nmt.text.pipeline import InputOptions, InputPipeline


class Words:
    """A vocabulary that holds the words below whole and spells anything else by letters."""

    has_placeholders = True
    WORDS = {"ein", "Ein", "hund", "Hund", "läuft", "sehr", "schnell", "LKW"}

    def encode(self, texts):
        return [[0] if t in self.WORDS else list(range(len(t))) for t in texts]

    def log_prob(self, piece):
        return -1.0 if piece.strip("▁") in self.WORDS else -20.0


def test_spans_and_capitals_come_back_as_typed():
    pipeline = InputPipeline(Words())
    prepared = pipeline.prepare("EIN HUND LÄUFT 3 KM AUF www.example.com")
    assert prepared.shouting and prepared.text.startswith("Ein hund")  # lowered, then truecased
    assert prepared.spans == ("3", "www.example.com") and PLACEHOLDERS[0] in prepared.text
    answer = Translation(f"a dog runs {PLACEHOLDERS[0]} km on {PLACEHOLDERS[1]}", -1.0,
                         [(f"a dog walks {PLACEHOLDERS[0]} km", -2.0)])
    finished = pipeline.finish(answer, prepared)
    assert finished.text == "A DOG RUNS 3 KM ON www.example.com"
    assert finished.alternatives[0][0].startswith("A DOG WALKS 3 KM")


def test_an_unknown_acronym_passes_through_a_known_one_stays_and_emphasis_is_lowered():
    pipeline = InputPipeline(Words())
    assert pipeline.is_unknown_acronym("EU") and not pipeline.is_unknown_acronym("LKW")
    assert pipeline.is_emphasis("SEHR") and not pipeline.is_emphasis("LKW")
    prepared = pipeline.prepare("Ein Hund läuft SEHR schnell zur EU")
    assert prepared.spans == ("EU",) and "sehr" in prepared.text


@pytest.mark.parametrize("step, sentence, unchanged", [
    ("pass_through", "Ein Hund läuft 3 km", "Ein Hund läuft 3 km"),
    ("lower_capitals", "EIN HUND LÄUFT", "EIN HUND LÄUFT"),
    ("truecase", "ein hund läuft", "ein hund läuft"),
])
def test_each_step_can_be_switched_off(step, sentence, unchanged):
    on = InputPipeline(Words()).prepare(sentence)
    off = InputPipeline(Words(), InputOptions(**{step: False})).prepare(sentence)
    assert on.text != unchanged and off.text == unchanged


def test_the_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        InputOptions().truecase = False


def test_a_translator_switches_options_on_a_copy_sharing_the_model(trained_model_dir):
    from nmt.decode.translator import Translator

    translator = Translator.load(trained_model_dir)
    off = translator.with_options(pass_through=False, restrict_output=False)
    assert off.model is translator.model and not off.options.pass_through and not off.restrict_output
    assert translator.options == InputOptions() and translator.restrict_output
    assert translator.for_pair(translator.src_lang, translator.tgt_lang) is translator


def test_control_and_invisible_characters_never_reach_the_model_nor_the_answer(trained_model_dir):
    from nmt.decode.translator import Translator
    from nmt.text.pipeline import drop_invisible

    assert drop_invisible("ein\u200b hund\x1b[31m läuft\x1b[0m\x07\u00ad") == "ein hund läuft"
    assert drop_invisible("👩\u200d💻 hu\u200dnd\tim\npark") == "👩\u200d💻 hund\tim\npark"
    translator = Translator.load(trained_model_dir)
    plain = translator.translate(["ein hund läuft im park"])
    typed = translator.translate(["ein\u200b hund\x1b[1m läuft\x1b[0m im\ufeff park\x00"])
    assert typed == plain
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in typed[0])
