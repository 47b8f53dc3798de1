"""Training pairs for what people type (nmt/data/augment.py) and a vocabulary that loses no
character (nmt/data/tokenizer.py)."""

import random

from conftest import toy_corpus

from nmt.core.config import DataConfig
from nmt.data.augment import augment, join_clauses, number_placeholders
from nmt.text.passthrough import PLACEHOLDERS


def test_unseen_characters_survive_tokenization_and_digits_split(toy_tokenizer, tmp_path):
    from nmt.data.tokenizer import train_tokenizer

    text = "Ein hund 🐕 läuft 漢字 über 12345 ☃ Straße ‽"
    ids = toy_tokenizer.encode([text])[0]
    assert 3 not in ids  # no <unk>
    assert toy_tokenizer.decode([ids]) == [text]
    src, tgt = toy_corpus(300, seed=2)
    with_numbers = train_tokenizer(src + tgt + ["Raum 12345 und 2024, 678 und 90"] * 50,
                                   tmp_path / "spm.model", vocab_size=340)
    pieces = with_numbers.encode_pieces(["12345 2024"])[0]
    assert [p.strip("▁") for p in pieces if p.strip("▁")] == list("123452024")


def test_number_words_become_shared_placeholders():
    rng = random.Random(0)
    src, tgt = number_placeholders("Zwei Männer und 3 Hunde.", "Two men and 3 dogs.", "de", "en", rng)
    assert src[0] in PLACEHOLDERS and src[0] == tgt[0] and src.split()[3] == tgt.split()[3]
    assert number_placeholders("Zwei Männer.", "Three men.", "de", "en", rng) is None
    assert number_placeholders("Ein Mann.", "A man.", "de", "en", rng) is None


def test_augment_adds_joined_and_lowercased_pairs():
    src, tgt = toy_corpus(200, seed=3)
    config = DataConfig(join_fraction=0.25, join_max=3, lowercase_fraction=0.1, span_fraction=0.1)
    a_src, a_tgt, counts = augment(src, tgt, "de", "en", config, seed=1)
    assert counts["joined"] == 50 and counts["lowercased"] == 20 and counts["spans"] > 0
    assert len(a_src) == len(a_tgt) == 270
    assert a_src[-1].count(" und ") + a_src[-1].count("; ") >= 1
    assert augment(src, tgt, "de", "en", config, seed=1) == (a_src, a_tgt, counts)  # seeded
    assert augment(src, tgt, "de", "en", DataConfig(), seed=1)[:2] == (src, tgt)


def test_real_names_fill_name_spans_and_the_robustness_names_stay_unseen():
    from nmt.data.augment import real_names
    from nmt.data.prepare import training_names
    from nmt.text.passthrough import PASS_THROUGH

    src, tgt = toy_corpus(400, seed=5)
    names = training_names(DataConfig(real_name_share=1.0))
    held_out = {w for name in PASS_THROUGH["name"] for w in name.split()}
    assert names is not None and not held_out & (set(names[0]) | set(names[1]))
    assert {"Heinrich", "Marchand", "Němec"} <= set(names[0]) | set(names[1])
    spans = DataConfig(span_fraction=1.0, real_name_share=1.0)
    a_src, a_tgt, _ = augment(src, tgt, "de", "en", spans, seed=2, names=names)
    known = set(names[0]) | set(names[1])
    added = [[w for w in s.replace("(", " ").replace(")", " ").replace(":", " ").split()
              if w in known] for s in a_src]
    assert sum(bool(a) for a in added) > 150  # half the spans are names, all of them real
    assert all(all(w in t for w in a) for a, t in zip(added, a_tgt))  # on both sides
    # with a share of 0 the pairs are exactly those of runs made before real names existed
    plain = DataConfig(span_fraction=0.3)
    assert augment(src, tgt, "de", "en", plain, seed=2, names=real_names()) == \
        augment(src, tgt, "de", "en", plain, seed=2)


def test_join_clauses_lowercases_function_words_only_in_german():
    assert join_clauses(["Ein Hund läuft.", "Ein Mann sitzt."], "de", ", und ") == \
        "Ein Hund läuft, und ein Mann sitzt."
    assert join_clauses(["A dog.", "Hunde bellen."], "de", "; ") == "A dog; Hunde bellen."
    assert join_clauses(["A dog runs.", "Workers sit.", "USA wins!"], "en", ", and ") == \
        "A dog runs, and workers sit, and USA wins!"
