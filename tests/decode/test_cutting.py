"""Long and hard inputs through a real model: sentences past the training lengths, spans
passed through, clause by clause translation (nmt/decode/cutting.py)."""

import re

import pytest
from conftest import LEXICON, toy_corpus

from nmt.data.augment import join_clauses
from nmt.decode.translator import Translator


def _words(text: str) -> set[str]:
    return set(text.lower().replace(".", "").split())


@pytest.fixture(scope="module")
def joined_model_dir(tmp_path_factory, toy_corpus_dir):
    """A small Transformer trained with every pair also joined to its neighbours (2-3)."""
    import torch
    from conftest import tiny_config

    from nmt.core.config import ModelConfig
    from nmt.train.loop import train

    config = tiny_config(toy_corpus_dir, data=dict(join_fraction=0.5, join_max=3), max_epochs=10,
                         eval_max_sentences=20, lr=2e-3)
    config = config.replace(model=ModelConfig(d_model=64, n_heads=4, n_encoder_layers=2,
                                              n_decoder_layers=2, d_ff=128, dropout=0.0))
    run = tmp_path_factory.mktemp("joined") / "run"
    torch.manual_seed(0)
    train(config, run)
    return run / "last"  # best/ is chosen on single sentences, which it masters by epoch 5


def test_tiny_model_translates_past_its_longest_training_sentence(joined_model_dir):
    """Trained with joined examples, it translates three captions joined into one sentence,
    longer than any single training sentence, to the end: the safety net that splits clauses
    is switched off, so this is the model's own doing. Judged by the third clause being there
    with most of its words: which words a 0.4-minute toy model gets right varies with the CPU's
    kernels (one machine wrote "a cat jumps in the park" for "a small woman jumps in the
    park")."""
    from dataclasses import replace

    translator = Translator.load(joined_model_dir, quantize="none")
    translator.config = translator.config.replace(
        decode=replace(translator.config.decode, min_length_ratio=0.0))
    longest = max(len(s.split()) for s in toy_corpus(1500, 0)[0])
    src, tgt = toy_corpus(40, seed=11)
    picks = sorted(range(40), key=lambda i: -len(src[i].split()))[:3]
    source = join_clauses([src[i] for i in picks], "de", ", und ")
    assert len(source.split()) > longest
    output = translator.translate([source], beam_size=2)[0]
    clauses = output.split(", and ")
    assert len(clauses) == 3, (source, output)
    last_words = _words(tgt[picks[-1]]) - {"a", "the", "in"}
    assert len(last_words & _words(clauses[-1])) >= len(last_words) / 2, (source, output)
    reference = join_clauses([tgt[i] for i in picks], "en", ", and ")
    assert len(output.split()) >= 0.8 * len(reference.split()), (output, reference)


def test_translator_passes_spans_through_and_never_fails_on_length(trained_model_dir):
    translator = Translator.load(trained_model_dir)
    out = translator.translate(["Ein hund läuft im park 🐕 https://example.com/x.",
                                "EIN HUND LÄUFT IM PARK.", "wort" * 400,
                                "EIN HUND LÄUFT IM PARK, info@example.com",
                                "EIN HUND LÄUFT IM Park."])
    assert "🐕" in out[0] and "https://example.com/x" in out[0] and "dog" in out[0]
    assert out[1] == out[1].upper() and "DOG" in out[1]
    # shouted around an address in lowercase: still shouting, the address as typed
    assert "DOG" in out[3] and "info@example.com" in out[3], out[3]
    assert out[4] == out[4].upper() and "DOG" in out[4], out[4]  # one word typed as usual
    assert out[2]  # 1,600 characters of one word: halved until it fits, never an error
    assert {w for w in LEXICON.values()} & _words(out[0])


def test_long_sentences_are_translated_clause_by_clause_when_configured(trained_model_dir):
    """With ``decode.clause_split_tokens``, no piece the model reads is longer than that (when
    there is a clause boundary to cut at), and every clause's translation is in the output."""
    from dataclasses import replace

    translator = Translator.load(trained_model_dir, quantize="none")
    src, tgt = toy_corpus(6, seed=21)
    source = join_clauses(src, "de", ", und ")
    read: list[int] = []
    passes: list[int] = []
    search = translator.search_ids

    def spy(ids, *args, **kwargs):
        read.extend(len(x) for x in ids)
        passes.append(len(ids))
        return search(ids, *args, **kwargs)

    translator.search_ids = spy
    whole = len(translator.tokenizer.encode([source])[0])
    translator.translate([source], beam_size=2)
    assert read == [whole]  # off by default: read whole
    read.clear()
    passes.clear()
    translator.config = translator.config.replace(
        decode=replace(translator.config.decode, clause_split_tokens=12))
    output = translator.translate([source], beam_size=2)[0]
    assert len(read) >= 4 and max(read) <= 12 + 2, read
    assert len(passes) == 1, passes  # cut first, all pieces searched together
    words = set(re.findall(r"\w+", output.lower()))
    for reference in tgt:  # each clause's content is there
        assert set(re.findall(r"\w+", reference.lower())) - {"a", "the", "in"} <= words, output
    assert output.count(", ") >= len(src) - 1 and ".," not in output, output
    # cut before "und", which goes into the separator as "and"; no clause starts a sentence
    assert output.count(", and ") >= len(src) - 1 and not re.search(r", and [A-Z]", output), output
