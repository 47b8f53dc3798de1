import pytest
import torch

from nmt.decode.quantize import Int8Linear
from nmt.decode.translator import Translator
from nmt.text.sentences import join_sentences, split_sentences


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_same_input_same_output_whatever_the_batch(trained_model_dir, quantize):
    translator = Translator.load(trained_model_dir, quantize=quantize)
    probe = "Eine kleine katze springt im wasser."
    alone = translator.translate([probe], beam_size=3)[0]
    crowd = ["Ein hund.", "Der mann sitzt im park und eine frau spielt im schnee.", probe,
             "Ein groß kind läuft.", "Eine frau springt im garten."] * 5
    together = translator.translate(crowd, beam_size=3)
    assert all(out == alone for text, out in zip(crowd, together) if text == probe)


def test_int8_is_the_default_and_close_to_fp32(trained_model_dir):
    fp32 = Translator.load(trained_model_dir, quantize="none")
    int8 = Translator.load(trained_model_dir)
    assert (int8.precision, fp32.precision) == ("int8", "none")
    assert isinstance(int8.model.output, Int8Linear)  # the tied output projection too
    assert not any(type(m) is torch.nn.Linear for m in int8.model.modules())
    assert int8.parameters == fp32.parameters == fp32.model.num_parameters()
    texts = ["Ein hund läuft im park.", "Eine frau sitzt."]
    assert [t.split()[:2] for t in int8.translate(texts)] == [t.split()[:2] for t in fp32.translate(texts)]
    with pytest.raises(ValueError):
        Translator.load(trained_model_dir, quantize="int4")


@pytest.mark.parametrize("text", ["Eins. Zwei! Drei?", "Ein Satz ohne Ende", "A.\n\nB.  C.", "",
                                  "„Hallo.“ Sagte er.", " ".join(["wort"] * 200)])
def test_sentence_split_round_trips(text):
    pieces = split_sentences(text)
    assert join_sentences([s for s, _ in pieces], pieces) == text
    assert all(len(s.split(" ")) <= 80 for s, _ in pieces)


def test_paragraph_translated_sentence_by_sentence(trained_model_dir):
    translator = Translator.load(trained_model_dir)
    one, two = translator.translate(["Ein hund läuft.", "Eine katze sitzt."], beam_size=2)
    assert translator.translate(["Ein hund läuft. Eine katze sitzt."], beam_size=2) == [f"{one} {two}"]
