"""Robustness sets built from a split, and what their scores say (nmt/evaluate/robustness.py)."""


from conftest import toy_corpus

from nmt.evaluate.robustness import build_sets, casing, score_set
from nmt.text.casing import is_shouting


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


def test_acronym_and_emphasis_sets():
    from nmt.text.passthrough import ACRONYMS

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
