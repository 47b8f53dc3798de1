"""Training pairs for what people type, made from the corpus itself (issue: robust translation).

Multi30k is one caption per line: short, cased as in print, almost no digits. Trained on it alone
a model drops the end of long inputs, garbles lowercase and capitals, and mangles numbers. Four
cheap, seeded transforms of the training set teach it otherwise (docs/TUNING.md measures each):

- joined: k consecutive pairs joined into one long pair (", und " / ", and ", "; ", " und " /
  " and "), so training covers the lengths the service accepts;
- lowercased: copies whose source is lowercased (the target keeps its case), so "ein hund rennt"
  translates like "Ein Hund rennt" (capitals are lowercased before translation, nmt/text/casing.py);
- placeholders: number words both sides share ("zwei" / "two", "3" / "3") replaced by the same
  placeholder (nmt/text/passthrough.py), so the model learns to copy placeholders where they belong;
- pass-through spans: a placeholder or an invented name put into both sides at the same place
  (start, end, in parentheses), so copying works anywhere in a sentence.

The same ``join_clauses`` builds the *long* robustness sets (nmt/evaluate/robustness.py).
"""

from __future__ import annotations

import random
import re

from nmt.text.casing import lowercase_inside_sentence
from nmt.text.passthrough import PLACEHOLDERS

# Connectives that join two captions into one sentence, per language; the first is the one the
# robustness sets use, training draws from all.
JOINERS = {
    "de": (", und ", "; ", " und "),
    "en": (", and ", "; ", " and "),
    "fr": (", et ", "; ", " et "),
    "cs": (", a ", "; ", " a "),
}
NEUTRAL_JOINERS = ("; ", "; ", "; ")  # a language without its own: no word of another language
NUMBER_WORDS = {
    "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun",
           "zehn", "elf", "zwölf"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve"),
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
           "onze", "douze"),
    "cs": ("nula", "jeden", "dva", "tři", "čtyři", "pět", "šest", "sedm", "osm", "devět", "deset",
           "jedenáct", "dvanáct"),
}
_WORD = re.compile(r"\w+", re.UNICODE)
_FINAL = ".!?"


def join_clauses(sentences: list[str], lang: str, joiner: str) -> str:
    """One sentence from several: inner final stops dropped, a leading function word lowercased."""
    parts = []
    for i, sentence in enumerate(sentences):
        sentence = sentence.strip()
        if i < len(sentences) - 1:
            sentence = sentence.rstrip(_FINAL).rstrip()
        if i > 0 and lowercase_inside_sentence(sentence.split(" ", 1)[0], lang):
            sentence = sentence[:1].lower() + sentence[1:]
        parts.append(sentence)
    return joiner.join(parts)


_number_patterns: dict[str, re.Pattern] = {}


def _numbers(text: str, lang: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of number words and digit runs in ``text``: whole words only, found
    by one pattern per language (scanning word by word in Python was the largest part of
    preparing a corpus). "ein"/"one" are left out: articles as often as numbers."""
    words = NUMBER_WORDS.get(lang, ())
    pattern = _number_patterns.get(lang)
    if pattern is None:
        alternatives = "|".join(re.escape(w) for w in sorted(words[2:], key=len, reverse=True))
        pattern = re.compile(rf"(?<!\w)(?:\d+{'|' + alternatives if alternatives else ''})(?!\w)",
                             re.IGNORECASE)
        _number_patterns[lang] = pattern
    found = []
    for match in pattern.finditer(text):
        token = match.group(0)
        value = token if token.isdigit() else str(words.index(token.lower()))
        found.append((match.start(), match.end(), value))
    return found


def _replace(text: str, spans: list[tuple[int, int, str]], symbol_of: dict[str, str]) -> str:
    out, at = [], 0
    for start, end, value in spans:
        out += [text[at:start], symbol_of[value]]
        at = end
    return "".join(out + [text[at:]])


def number_placeholders(src: str, tgt: str, src_lang: str, tgt_lang: str,
                        rng: random.Random) -> tuple[str, str] | None:
    """Both sides with their shared numbers as placeholders, or None when the numbers differ."""
    src_spans, tgt_spans = _numbers(src, src_lang), _numbers(tgt, tgt_lang)
    values = [v for _, _, v in src_spans]
    if not values or sorted(values) != sorted(v for _, _, v in tgt_spans) \
            or len(set(values)) != len(values):
        return None
    symbols = rng.sample(PLACEHOLDERS, len(values))
    symbol_of = dict(zip(values, symbols))
    return _replace(src, src_spans, symbol_of), _replace(tgt, tgt_spans, symbol_of)


# Syllables of made-up names: onsets, vowels and codas of several European languages, so that
# the model meets thousands of different names and can only learn to copy them. (An earlier
# inventory of twelve syllables taught it those syllables instead: "Oskar" came out as "2ka".)
_ONSETS = ("", "b", "br", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n",
           "p", "pf", "r", "s", "sch", "sh", "st", "t", "th", "tr", "v", "w", "z", "x", "c", "qu")
_VOWELS = ("a", "e", "i", "o", "u") * 4 + ("y", "ä", "ö", "ü", "é", "è", "ë", "ie", "ei", "au",
                                           "ou", "ea")
_CODAS = ("",) * 8 + ("n", "r", "l", "s", "t", "m", "nd", "rt", "ck", "x", "ll", "ng", "tz")
NAME_SHARE = 0.5  # of the pass-through spans: names; the rest are placeholders


def invented_name(rng: random.Random) -> str:
    """A made-up name of one to three words (no model has seen it, so it can only be copied)."""
    def word() -> str:
        syllables = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                            for _ in range(rng.choice((1, 2, 2, 2, 3))))
        return syllables[0].upper() + syllables[1:]
    return " ".join(word() for _ in range(rng.choice((1, 1, 2, 2, 3))))


def name_span(rng: random.Random, d, names) -> str:
    """An invented name, or a real one for ``d.real_name_share`` of them (the random draws are
    those of earlier versions when the share is 0, so their runs resume exactly)."""
    if d.real_name_share and names and rng.random() < d.real_name_share:
        return real_name(rng, names)
    return invented_name(rng)


def insert_span(src: str, tgt: str, span: str, where: str) -> tuple[str, str]:
    """``span`` put into both sides at the same place: "start", "end" or "paren"."""
    def place(text: str) -> str:
        body = text.rstrip()
        end = len(body)
        while end > 0 and body[end - 1] in _FINAL:
            end -= 1
        if where == "start":
            return f"{span}: {text}"
        if where == "paren":
            return f"{body[:end]} ({span}){body[end:]}"
        return f"{body[:end]} {span}{body[end:]}"
    return place(src), place(tgt)


def real_names(held_out: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """First names and surnames of German, French, Czech and English speakers (Faker's lists,
    sorted), less the words of ``held_out`` (the robustness set's names: kept unseen, so that it
    measures names the model never met)."""
    from faker.providers.person import cs_CZ, de_DE, en_GB, fr_FR

    first, last = set(), set()
    for provider in (de_DE.Provider, fr_FR.Provider, cs_CZ.Provider, en_GB.Provider):
        first |= set(provider.first_names_male) | set(provider.first_names_female)
        last |= set(provider.last_names)
    keep = lambda names: sorted(n for n in names if n not in held_out)  # noqa: E731
    return keep(first), keep(last)


def real_name(rng: random.Random, names: tuple[list[str], list[str]]) -> str:
    """A first name, a surname, or both (half the time)."""
    first, last = names
    shape = rng.random()
    if shape < 0.5:
        return f"{rng.choice(first)} {rng.choice(last)}"
    return rng.choice(first) if shape < 0.8 else rng.choice(last)


def augment(src: list[str], tgt: list[str], src_lang: str, tgt_lang: str, data_config,
            seed: int | str, names: tuple[list[str], list[str]] | None = None
            ) -> tuple[list[str], list[str], dict[str, int]]:
    """The training pairs with the configured transforms applied; counts of each for the log.
    ``names``: real first names and surnames (``real_names``), for ``data.real_name_share``
    of the name spans."""
    d, rng = data_config, random.Random(f"augment/{seed}")
    src, tgt = list(src), list(tgt)
    counts = {"placeholders": 0, "spans": 0, "lowercased": 0, "joined": 0}
    for i in range(len(src)):
        if d.placeholder_fraction and rng.random() < d.placeholder_fraction:
            replaced = number_placeholders(src[i], tgt[i], src_lang, tgt_lang, rng)
            if replaced is not None:
                src[i], tgt[i] = replaced
                counts["placeholders"] += 1
                continue
        if d.span_fraction and rng.random() < d.span_fraction:
            span = name_span(rng, d, names) if rng.random() < NAME_SHARE else \
                rng.choice(PLACEHOLDERS)
            src[i], tgt[i] = insert_span(src[i], tgt[i], span,
                                         rng.choice(("start", "end", "paren")))
            counts["spans"] += 1
    n = len(src)
    for i in rng.sample(range(n), int(d.lowercase_fraction * n)):
        src.append(src[i].lower())
        tgt.append(tgt[i])
        counts["lowercased"] += 1
    for _ in range(int(d.join_fraction * n) if n >= 2 else 0):
        k = min(n, rng.randint(2, max(2, d.join_max)))  # a chunk smaller than join_max: all
        start = rng.randrange(0, n - k + 1)
        choice = rng.randrange(len(JOINERS.get(src_lang, NEUTRAL_JOINERS)))
        src.append(join_clauses(src[start:start + k], src_lang,
                                JOINERS.get(src_lang, NEUTRAL_JOINERS)[choice]))
        tgt.append(join_clauses(tgt[start:start + k], tgt_lang,
                                JOINERS.get(tgt_lang, NEUTRAL_JOINERS)[choice]))
        counts["joined"] += 1
    return src, tgt, counts
