"""Text typed in capitals or all in lowercase, given back the casing the model knows.

A vocabulary learned from captions splits "EIN HUND RENNT" into single letters, and no model
trained on them translates that. So a sentence typed in capitals is lowercased before
translation and its translation put in capitals, matching what the user typed; a name or word
typed as usual among the capitals does not stop it being one ("EIN HUND NAMENS Max RENNT": read
as it stood, the model turned such sentences into runs of letters). A sentence
all in lowercase (and so a lowered one) is then truecased word by word with the vocabulary's own
statistics: "hund" becomes "Hund" where the SentencePiece model finds "Hund" much the likelier
spelling, and "weiss" becomes "weiß" where that is (capitals have no ß, so lowering "WEISS" cannot
know). Training also has lowercased sources (nmt/data/augment.py), for what truecasing misses.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# How much likelier (in nats of the unigram model) a spelling must be to replace the typed one.
TRUECASE_MARGIN = 2.0
_WORD = re.compile(r"[^\W\d_]+")
# German words that start a caption and are lowercase inside a sentence.
FUNCTION_WORDS = {
    "de": {"ein", "eine", "einer", "eines", "einem", "einen", "der", "die", "das", "den", "dem",
           "des", "zwei", "drei", "vier", "fünf", "mehrere", "viele", "einige", "es", "er", "sie",
           "auf", "in", "im", "an", "am", "mit", "zu", "nach", "bei", "von", "vor", "hinter"},
}


# The share of a sentence's words typed in capitals that makes it shouted (words with two or
# more cased letters, "Hotdog-Stand" one word): a name typed as usual among them does not make it
# otherwise, an acronym or two in a sentence does not make it shouted.
SHOUTED_WORDS = 0.75
# Capitals inside a sentence that is not shouted: a run of this many words, with this many
# capitals, is emphasis (lowered for the model), fewer an acronym or two (kept).
SHOUTED_RUN_WORDS = 2
SHOUTED_RUN_LETTERS = 6


def cased_letters(text: str) -> list[str]:
    """The letters of ``text`` that have a capital and a small form."""
    return [c for c in text if c.isalpha() and c.lower() != c.upper()]


def in_capitals(word: str) -> bool:
    """A word typed in capitals: two or more cased letters, all capitals ("EU", not "X5")."""
    return word.isupper() and len(cased_letters(word)) >= 2


def is_shouting(text: str, min_letters: int = 4) -> bool:
    """Typed in capitals: enough capital letters to be more than an acronym, and all words but
    one, or at least ``SHOUTED_WORDS`` of them, in capitals ("EIN HUND NAMENS Max RENNT")."""
    if sum(c.isupper() for c in cased_letters(text)) < min_letters:
        return False
    words = [w for w in text.split() if len(cased_letters(w)) >= 2]
    shouted = sum(in_capitals(w) for w in words)
    return shouted >= max(len(words) - 1, 1) or shouted >= SHOUTED_WORDS * len(words)


def shout(text: str, spans: tuple[str, ...] = ()) -> str:
    """``text`` in capitals, except the pass-through spans it contains (links keep their case)."""
    if not spans:
        return text.upper()
    out, at = [], 0
    for span in spans:
        found = text.find(span, at)
        if found < 0:
            continue
        out += [text[at:found].upper(), span]
        at = found + len(span)
    return "".join(out) + text[at:].upper()


def is_lowercase(text: str, min_letters: int = 4) -> bool:
    letters = cased_letters(text)
    return len(letters) >= min_letters and all(c.islower() for c in letters)


def truecase_words(text: str, score) -> str:
    """Each word of lowercase ``text`` in its likeliest spelling: as typed, capitalised, or with
    "ss" as "ß"; ``score(word)`` is the vocabulary's log-probability of a spelling."""
    def best(match: re.Match) -> str:
        word = match.group(0)
        variants = {word, word.capitalize()}
        if "ss" in word:
            variants |= {v.replace("ss", "ß") for v in list(variants)}
        typed = score(word)
        choice, value = word, typed + TRUECASE_MARGIN
        for variant in sorted(variants - {word}):
            if score(variant) > value:
                choice, value = variant, score(variant)
        return choice

    return _WORD.sub(best, text)


def _capitalize_start(text: str) -> str:
    first = _WORD.search(text)  # a sentence starts with a capital, as every caption does
    if first is not None and text[:first.start()].strip() == "":
        text = text[:first.start()] + text[first.start()].upper() + text[first.start() + 1:]
    return text


def truecase(text: str, score) -> str:
    """An all-lowercase ``text`` truecased word by word (``truecase_words``), its first letter a
    capital."""
    return _capitalize_start(truecase_words(text, score))


_QUOTES = "\"'„“”‚‘’«»‹›"


def _quoted(run: list[str]) -> bool:
    """A run in quotation marks is text quoted as written, a sign's "MAKE SOME NOISE": kept."""
    return run[0][0] in _QUOTES or run[-1].rstrip(".,;:!?")[-1:] in _QUOTES


def lower_shouted_runs(text: str, score, is_emphasis: Callable[[str], bool] = lambda _: False) -> str:
    """``text`` with each run of words typed in capitals inside it (``SHOUTED_RUN_WORDS`` or more
    in a row, ``SHOUTED_RUN_LETTERS`` capitals or more) truecased: "Ein Mann FÄHRT FAHRRAD" as
    "Ein Mann fährt Fahrrad". Read as typed, the model copied such runs untranslated. In a
    shorter run, only the words that ``is_emphasis`` takes for ordinary words typed so ("Ein
    Hund rennt SEHR schnell": the model read "SEHR" as four letters); an acronym or two ("die
    USA und die EU", "USA EU") and a run in quotation marks stay as they are."""
    def emphasis(match: re.Match) -> str:
        word = match.group(0)
        return truecase_words(word.lower(), score) if in_capitals(word) and is_emphasis(word) \
            else word

    parts = re.split(r"(\s+)", text)  # words at even places, the spacing between at odd
    capital = [i % 2 == 0 and in_capitals(p) for i, p in enumerate(parts)]
    i = 0
    while i < len(parts):
        end = i
        while end < len(parts) and capital[end]:
            end += 2
        run = parts[i:end:2]
        if run and not _quoted(run):
            shouted = len(run) >= SHOUTED_RUN_WORDS and \
                sum(len(cased_letters(w)) for w in run) >= SHOUTED_RUN_LETTERS
            first = parts[i]
            for at in range(i, end, 2):
                parts[at] = truecase_words(parts[at].lower(), score) if shouted \
                    else _WORD.sub(emphasis, parts[at])
            if parts[i] != first and "".join(parts[:i]).strip() == "":
                parts[i] = _capitalize_start(parts[i])
        i = max(end, i + 2)
    return "".join(parts)


def lowercase_inside_sentence(first: str, lang: str) -> bool:
    """Whether a sentence's first word is lowercase when the sentence goes inside another: in
    German only function words (nouns keep their capital); elsewhere any capitalised word that
    is not an acronym."""
    if lang == "de":
        return first.lower() in FUNCTION_WORDS["de"]
    return first[:1].isupper() and first[1:] == first[1:].lower()
