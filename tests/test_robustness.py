"""What people type: long inputs, casing, text that must pass through (nmt/augment.py,
nmt/passthrough.py, nmt/casing.py, nmt/robustness.py, the translator's safety nets)."""

import random
import re

import pytest
from conftest import LEXICON, toy_corpus

from nmt.augment import augment, join_clauses, number_placeholders
from nmt.casing import is_shouting, shout
from nmt.config import DataConfig
from nmt.passthrough import PLACEHOLDERS, find_spans, protect, restore
from nmt.robustness import build_sets, casing, score_set
from nmt.translation import Cut, Translation, halve, join_parts, split_clauses
from nmt.translator import Translator


def test_robustness_sets_are_built_from_the_split():
    src, tgt = toy_corpus(40, seed=5)
    sets = {s.name: s for s in build_sets(src, tgt, "de", "en")}
    assert sets["plain"].sources == src
    three = sets["long-3"]
    assert len(three.sources) == 13 and three.groups[1] == [3, 4, 5]
    assert three.sources[1].count(", und ") == 2 and three.references[1].count(", and ") == 2
    # inner full stops dropped, the last kept; each joined sentence carries all three captions
    assert three.sources[1].count(".") == 1 and three.sources[1].endswith(".")
    for i in (3, 4, 5):
        assert src[i].rstrip(".").split(" ", 1)[1] in three.sources[1]
    assert sets["upper"].sources[0] == src[0].upper() and sets["upper"].references == tgt
    assert sets["lower"].sources[7] == src[7].lower()
    for typed, mixed in zip(src, sets["upper-word"].sources):  # capitals, one word as typed
        kept = [w for w in mixed.split(" ") if w != w.upper()]
        assert mixed.upper() == typed.upper() and len(kept) <= 1 and set(kept) <= set(typed.split(" "))
        assert is_shouting(mixed) or sum(c.isupper() for c in mixed) < 4
    passing = sets["pass"]
    kinds = {kind for kind, _ in passing.tokens}
    assert {"number", "date", "price", "code", "url", "email", "emoji", "name"} <= kinds
    for (_, token), s, r in zip(passing.tokens, passing.sources, passing.references):
        assert token in s and token in r
    shouted = sets["upper-pass"]
    assert {kind for kind, _ in shouted.tokens} == kinds - {"name"}
    for (_, token), s, r in zip(shouted.tokens, shouted.sources, shouted.references):
        assert token in s and token in r and s.replace(token, "").isupper()
    assert any(token.lower() == token and any(c.isalpha() for c in token)
               for _, token in shouted.tokens)  # links in lowercase among them


def test_scores_say_what_was_copied_and_how_cased():
    src, tgt = toy_corpus(16, seed=6)
    passing = {s.name: s for s in build_sets(src, tgt, "de", "en")}["pass"]
    dropped = [r.replace(token, "") for (_, token), r in zip(passing.tokens, passing.references)]
    assert score_set(passing, passing.references, tgt, "en")["copied"] == 1.0
    assert score_set(passing, dropped, tgt, "en")["copied"] == 0.0
    assert casing(["A DOG.", "A cat.", "the man."]) == {"all_caps": 0.333, "starts_upper": 0.667}
    shouted = {s.name: s for s in build_sets(src, tgt, "de", "en")}["upper-pass"]
    answers = [r.upper().replace(token.upper(), token) for (_, token), r in
               zip(shouted.tokens, shouted.references)]  # in capitals, links as typed
    assert score_set(shouted, answers, tgt, "en")["all_caps"] == 1.0


def test_unseen_characters_survive_tokenization_and_digits_split(toy_tokenizer, tmp_path):
    from nmt.tokenizer import train_tokenizer

    text = "Ein hund 🐕 läuft 漢字 über 12345 ☃ Straße ‽"
    ids = toy_tokenizer.encode([text])[0]
    assert 3 not in ids  # no <unk>
    assert toy_tokenizer.decode([ids]) == [text]
    src, tgt = toy_corpus(300, seed=2)
    with_numbers = train_tokenizer(src + tgt + ["Raum 12345 und 2024, 678 und 90"] * 50,
                                   tmp_path / "spm.model", vocab_size=340)
    pieces = with_numbers.encode_pieces(["12345 2024"])[0]
    assert [p.strip("▁") for p in pieces if p.strip("▁")] == list("123452024")


@pytest.mark.parametrize("text, spans", [
    ("Ein Hund rennt.", ()),
    ("Der Preis beträgt 25,50 € für 3 Personen am 12.05.2023.", ("25,50 €", "3", "12.05.2023")),
    ("Besuchen Sie https://example.com/a?b=1, oder schreiben Sie an max@example.org!",
     ("https://example.com/a?b=1", "max@example.org")),
    ("Code A4-17 (Raum 5) 🐕‍🦺 und 👍🏽", ("A4-17", "5", "🐕‍🦺", "👍🏽")),
    ("Preis: € 20 (oder $5)", ("€ 20", "$5")),
])
def test_placeholders_round_trip(text, spans):
    protected = protect(text)
    assert protected.spans == spans
    assert not any(span in protected.text for span in spans)
    assert sum(protected.text.count(p) for p in PLACEHOLDERS) == len(spans)
    assert restore(protected.text, protected.spans) == text


def test_restore_never_loses_a_span():
    spans = ("https://example.com", "42")
    assert restore("Visit \ue002 now.", spans) == "Visit 42 now https://example.com."
    assert restore("An \ue007 invented placeholder.", ()) == "An invented placeholder."
    assert restore("\ue001 und \ue001.", ("3",)) == "3 und ."  # a repeat is not a second copy
    assert len(find_spans("a " * 5 + "1 2 3 4 5 6 7 8 9 10 11")) == 11
    assert len(protect("1 2 3 4 5 6 7 8 9 10 11").spans) == len(PLACEHOLDERS)  # the rest stay text


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
    from nmt.augment import real_names
    from nmt.data import training_names
    from nmt.robustness import PASS_THROUGH

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


def test_truecasing_picks_the_likelier_spelling():
    from nmt.casing import truecase

    scores = {"hund": -12.0, "Hund": -7.0, "weiss": -15.0, "weiß": -8.0, "Weiss": -16.0,
              "Weiß": -14.0, "park": -9.0, "Park": -8.5, "ein": -5.0, "Ein": -4.0}
    assert truecase("ein hund im park, weiss.", lambda w: scores.get(w, -20.0)) == \
        "Ein Hund im park, weiß."  # "Park" is likelier, but not by the margin


def test_shouting_is_lowered_and_answered_in_capitals():
    assert is_shouting("EIN HUND RENNT DURCH DEN SCHNEE.")
    assert not is_shouting("Die USA und die EU.") and not is_shouting("ABC 123")
    # a name or noun typed as usual in a shouted sentence: still shouted (the model reads
    # capitals as single letters: val's upper-word set went from 0.85 to 43.55 BLEU with this)
    assert is_shouting("EIN HUND NAMENS Max RENNT DURCH DEN SCHNEE.")
    assert is_shouting("EINE FRAU MIT Sonnenbrille.") and not is_shouting("Eine Frau MIT BRILLE.")
    assert is_shouting("EIN MANN ARBEITET AN EINEM Hotdog-Stand.")  # one word, hyphens and all
    assert is_shouting("EIN Mann BOXT") and not is_shouting("Ein Auto von BMW.")
    assert shout("a dog at https://Example.com runs.", ("https://Example.com",)) == \
        "A DOG AT https://Example.com RUNS."


def test_runs_of_capitals_inside_a_sentence_are_truecased_acronyms_and_quotes_kept():
    from nmt.casing import lower_shouted_runs

    scores = {"Mann": -6.0, "mann": -12.0, "Fahrrad": -7.0, "fahrrad": -12.0, "Brille": -7.0}
    score = lambda w: scores.get(w, -20.0)  # noqa: E731
    assert lower_shouted_runs("Ein Mann FÄHRT FAHRRAD am Sonntag.", score) == \
        "Ein Mann fährt Fahrrad am Sonntag."
    assert lower_shouted_runs("EIN MANN fährt Fahrrad für 12,50 €.", score) == \
        "Ein Mann fährt Fahrrad für 12,50 €."  # a run that starts the sentence: its capital
    assert lower_shouted_runs("Eine Frau  MIT BRILLE.", score) == "Eine Frau  mit Brille."
    for kept in ("Die USA und die EU.", "Ein Auto von BMW.", "USA EU", "Ein BMW X5 ABC.",
                 "Ein Schild: „MAKE SOME NOISE“.", 'Ein Hemd mit "AIDS WALK" darauf.', ""):
        assert lower_shouted_runs(kept, score) == kept


def test_acronyms_pass_through_numbered_in_order_with_the_spans_already_there():
    from nmt.passthrough import protect_acronyms

    protected = protect("Die EU zahlt 25,50 € an das FBI-Büro der NATO, sagt OU.")
    assert protected.spans == ("25,50 €",)
    unknown = {"EU", "FBI", "NATO"}.__contains__  # "OU": an acronym the vocabulary knows
    out = protect_acronyms(protected, unknown)
    assert out.spans == ("EU", "25,50 €", "FBI", "NATO")
    p1, p2, p3, p4 = PLACEHOLDERS[:4]
    assert out.text == f"Die {p1} zahlt {p2} an das {p3}-Büro der {p4}, sagt OU."
    assert restore(f"The {p1} pays {p2} to the {p3} office of {p4}, says OU.", out.spans) == \
        "The EU pays 25,50 € to the FBI office of NATO, says OU."
    # never more than nine spans: the ones protect made come first, later acronyms stay text
    eight = protect(" ".join(str(n) for n in range(8)) + " EU FBI NATO")
    full = protect_acronyms(eight, unknown)
    assert full.spans == tuple(str(n) for n in range(8)) + ("EU",)
    assert full.text.endswith(f"{PLACEHOLDERS[8]} FBI NATO")


def test_a_word_in_capitals_for_emphasis_is_truecased_an_acronym_kept():
    from nmt.casing import lower_shouted_runs

    scores = {"sehr": -6.0, "Sehr": -9.0, "hund": -12.0, "Hund": -6.0}
    score = lambda w: scores.get(w, -20.0)  # noqa: E731
    emphasis = {"SEHR", "HUND"}.__contains__
    assert lower_shouted_runs("Ein Hund rennt SEHR schnell.", score, emphasis) == \
        "Ein Hund rennt sehr schnell."
    assert lower_shouted_runs("HUND im Schnee, SEHR kalt, EU.", score, emphasis) == \
        "Hund im Schnee, sehr kalt, EU."
    for kept in ("Die USA und die EU.", "Ein LKW.", "", "Ein Hund.", "Ein Schild: „SEHR“."):
        assert lower_shouted_runs(kept, score, emphasis) == kept


def test_acronym_and_emphasis_sets():
    from nmt.robustness import ACRONYMS

    src, tgt = toy_corpus(40, seed=5)
    sets = {s.name: s for s in build_sets(src, tgt, "de", "en")}
    acronym = sets["acronym"]
    assert {token for _, token in acronym.tokens} <= set(ACRONYMS)
    assert len({token for _, token in acronym.tokens}) > 3
    for (_, token), s, r in zip(acronym.tokens, acronym.sources, acronym.references):
        assert token in s and token in r
    emphasis = sets["upper-one"]
    assert emphasis.references == tgt
    for typed, shouted in zip(src, emphasis.sources):
        changed = [(a, b) for a, b in zip(typed.split(" "), shouted.split(" ")) if a != b]
        assert len(shouted.split(" ")) == len(typed.split(" ")) and len(changed) <= 1
        assert all(b == a.upper() and len(a) >= 4 for a, b in changed)
    assert sum(a != b for a, b in zip(src, emphasis.sources)) > 30


def test_safety_net_pieces():
    assert halve("eins zwei drei vier") == [("eins zwei", " "), ("drei vier", "")]
    assert halve("x" * 10) == [("x" * 5, ""), ("x" * 5, "")]
    assert split_clauses("a b, c d; e f g h i") == [("a b, c d", "; "), ("e f g h i", "")]
    assert split_clauses("no clause here") is None
    parts = [Translation("A dog runs.", -1.0, []), Translation("a cat sits.", -2.0, [])]
    joined = join_parts(parts, [("Ein Hund rennt", ", "), ("eine Katze sitzt.", "")])
    assert joined.text == "A dog runs, a cat sits." and joined.score == -3.0


def test_a_cut_text_is_put_back_from_its_leaves_in_order():
    inner = Cut("b, c", pieces=[("b", ", "), ("c", "")], parts=[Cut("b"), Cut("c")])
    cut = Cut("a; b, c", pieces=[("a", "; "), ("b, c", "")], parts=[Cut("a"), inner])
    assert [leaf.text for leaf in cut.leaves()] == ["a", "b", "c"]
    assert [leaf.text for leaf in Cut("x").leaves()] == ["x"]
    done = iter([Translation(t, -1.0, []) for t in ("A.", "B.", "C.")])
    assert cut.assemble(done, "en").text == "A; b, c." and next(done, None) is None


def test_clause_split_prefers_a_coordinating_conjunction_and_translates_it():
    text = "Ein Hund, eine Katze und ein Pferd stehen im Hof, und ein Mann sitzt."
    # the list comma is nearer the middle, the one before "und" joins two clauses
    assert split_clauses(text, "de", "en") == [
        ("Ein Hund, eine Katze und ein Pferd stehen im Hof", ", and "), ("ein Mann sitzt.", "")]
    assert split_clauses(text, "en", "fr")[0][1] == ", "  # "und" is no English conjunction
    assert split_clauses("Ein Hund rennt, oder er sitzt.", "de", "cs") == [
        ("Ein Hund rennt", ", nebo "), ("er sitzt.", "")]
    assert split_clauses("Sie sagt, und", "de", "en") == [("Sie sagt", ", "), ("und", "")]


def test_a_clause_inside_a_sentence_loses_the_capital_of_a_sentence_start():
    def join(texts, sources, lang):
        parts = [Translation(t, -1.0, [(t, -1.5)]) for t in texts]
        return join_parts(parts, [(s, ", and " if i == 0 else "") for i, s in enumerate(sources)],
                          lang)

    joined = join(["A dog runs.", "A cat sits."], ["Ein Hund rennt", "eine Katze sitzt."], "en")
    assert joined.text == "A dog runs, and a cat sits."
    assert joined.alternatives[0][0] == "A dog runs, and a cat sits."
    # a name (its source starts with a capital) and an acronym keep theirs
    assert join(["A dog runs.", "Anna sits."], ["Ein Hund rennt", "Anna sitzt."],
                "en").text == "A dog runs, and Anna sits."
    assert join(["A dog runs.", "USA."], ["Ein Hund rennt", "usa."], "en").text.endswith("USA.")
    # in German only a function word is lowered: nouns keep their capital
    assert join(["Ein Hund.", "Eine Katze sitzt."], ["A dog", "a cat sits."],
                "de").text == "Ein Hund, and eine Katze sitzt."
    assert join(["Ein Hund.", "Katzen sitzen."], ["A dog", "cats sit."],
                "de").text == "Ein Hund, and Katzen sitzen."


def _words(text: str) -> set[str]:
    return set(text.lower().replace(".", "").split())


@pytest.fixture(scope="module")
def joined_model_dir(tmp_path_factory, toy_corpus_dir):
    """A small Transformer trained with every pair also joined to its neighbours (2-3)."""
    import torch
    from conftest import tiny_config

    from nmt.config import ModelConfig
    from nmt.training import train

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


def test_names_copied_with_a_letter_wrong_are_put_right():
    from nmt.passthrough import repair_copies

    common = {"A", "Two", "An", "American", "Dalmatian"}.__contains__
    assert repair_copies("Anna Schmidt: Ein Hund rennt.", "Anam Schidtid: A dog runs.",
                         common) == "Anna Schmidt: A dog runs."
    assert repair_copies("Zwei Männer (Sophie).", "Two men (Sope (Sope).", common) == \
        "Two men (Sophie (Sope)."  # one word replaced once, the first
    # A common word, a source word and anything too different stay as they are.
    for source, output in (("Ein Amerikaner mit einem Dalmatiner.", "An American with a Dalmatian."),
                           ("Oskar und Otto.", "Oskar and Otto."),
                           ("Ein Hund namens Bello.", "A dog named Rex.")):
        assert repair_copies(source, output, common) == output
