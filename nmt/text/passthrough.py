"""Text that must come out of a translation unchanged: links, e-mail addresses, numbers, codes,
symbols and emoji, swapped for numbered placeholders before the model reads the sentence and put
back after.

    protected = protect("Der Preis beträgt 25,50 € am 12.05.2023.")
    protected.text   # "Der Preis beträgt \ue001 \ue002 am \ue003."
    restore(model_output, protected.spans)

A placeholder is one private-use character (U+E001...), a single SentencePiece symbol that every
vocabulary reserves (nmt/data/tokenizer.py) and that training teaches the model to copy (nmt/data/augment.py).
Private-use characters have no case, survive NFKC, and are not typed by people; one that is typed
is itself protected and comes back as it was. ``restore`` never loses a span: one the model left
out is appended to the translation, so nothing of the source silently disappears.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

PLACEHOLDERS = tuple(chr(0xE001 + i) for i in range(9))  # at most 9 distinct spans a sentence

# Examples of every kind of span, and acronyms, that the robustness sets put into sentences
# (nmt/evaluate/robustness.py); their names are held out of training (nmt/data/prepare.py), so
# the sets measure copying names never seen.
PASS_THROUGH = {
    "number": ("3", "42", "1.250", "7,5", "2024"),
    "date": ("12.05.2023", "2023-05-12", "14:30", "03/11/2024"),
    "price": ("25,50 €", "$19.99", "€120", "£7"),
    "code": ("A4-17", "B52", "X-2000", "KL-204", "AB-1234"),
    "url": ("https://example.com", "https://www.example.org/path?q=1", "www.nmt-demo.de/info"),
    "email": ("info@example.com", "anna.schmidt@firma.de", "team+nmt@example.org"),
    "emoji": ("🐕", "😀", "👍🏽", "🇩🇪", "❤️"),
    "name": ("Anna Schmidt", "Jürgen", "Zoë", "Lukas Müller", "Sophie Dubois", "Oskar"),
}
ACRONYMS = ("EU", "UNO", "NATO", "NASA", "FBI", "IKEA", "DHL", "UNESCO", "ZDF", "ADAC")

_URL = r"(?:https?://|www\.)[^\s<>\"]+"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# A run of non-space characters holding a digit: 3, 25,50, 12.05.2023, 10:30, A4-17, 5%, €20.
_NUMBER = r"[^\s\d]*\d\S*"
# What a span is: the first of these to match, scanning left to right (``re.finditer``'s
# semantics). Run by ``re`` itself this is quadratic in a long run of non-space characters
# that none of them matches ("a-a-a-..."): every position scans to the run's end again. So
# ``_span_matches`` gives the same matches in linear time; the pattern stays as the definition
# (tests compare the two).
_PATTERN = re.compile(f"{_URL}|{_EMAIL}|{_NUMBER}")
_URL_AT = re.compile(_URL)
_URL_START = re.compile(r"(?=https?://|www\.)")
_LOCAL_PART = re.compile(r"[\w.+-]+")
_DOMAIN_AT = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
_AT_SIGN = re.compile(r"@")
_DIGIT = re.compile(r"\d")
_RUN = re.compile(r"\S+")
_TRAILING = ".,;:!?)]}\"'»”’"  # sentence punctuation that follows a span, not part of it
_LEADING = "([{\"'«„“‘"  # and that opens before it
# Characters no caption vocabulary knows: symbols (emoji, currency, arrows), private use, and
# the joiners and variation selectors that glue emoji sequences together.
_SYMBOL_CATEGORIES = {"So", "Sc", "Sk", "Co", "Cs"}
_GLUE = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


@dataclass(frozen=True)
class Protected:
    text: str  # the sentence with placeholders
    spans: tuple[str, ...]  # spans[i] stands where PLACEHOLDERS[i] is


def is_symbol(char: str) -> bool:
    return char in _GLUE or unicodedata.category(char) in _SYMBOL_CATEGORIES


def _symbol_runs(text: str) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, char in enumerate(text):
        if is_symbol(char):
            start = i if start is None else start
        elif start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(text)))
    return runs


def find_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every span to pass through, in order, not overlapping. A symbol next to
    another span, one space apart ("25,50 €", "€ 20"), joins it: one placeholder keeps them
    together, where two were moved apart by the model."""
    spans = []
    for start, end in _span_matches(text):
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
        while start < end and text[start] in _LEADING:
            start += 1
        if end > start:
            spans.append((start, end))
    starts = [start for start, _ in spans]  # sorted, the spans apart
    for start, end in _symbol_runs(text):
        i = bisect.bisect_right(starts, start) - 1
        if i < 0 or start >= spans[i][1]:  # inside no span found above
            spans.append((start, end))
    return _join_symbols(text, sorted(spans))


def _span_matches(text: str) -> list[tuple[int, int]]:
    """``[m.span() for m in _PATTERN.finditer(text)]``, in time linear in the text. Every
    match lies inside one run of non-space characters, and inside a run: a number matches at
    any position with a digit at or after it (to the run's end); an e-mail address at any
    position of a run of ``[\\w.+-]`` that ends at an "@" followed by a domain; a link only
    where its "http://", "https://" or "www." starts."""
    out: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        _run_matches(text, run.start(), run.end(), out)
    return out


def _run_matches(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    digits = [m.start() for m in _DIGIT.finditer(text, start, end)]
    last_digit = digits[-1] if digits else -1
    links = [m.start() for m in _URL_START.finditer(text, start, end)]
    emails = []  # (first position of the local part, its "@", the address's end)
    for at in (m.start() for m in _AT_SIGN.finditer(text, start, end)):
        domain = _DOMAIN_AT.match(text, at, end)
        local = at
        while local > start and _LOCAL_PART.match(text[local - 1]):
            local -= 1
        if domain and local < at:
            emails.append((local, at, domain.end()))
    p, link, email = start, 0, 0
    while p < end:
        while link < len(links) and links[link] < p:
            link += 1
        while email < len(emails) and emails[email][1] <= p:
            email += 1
        # the leftmost position >= p where anything can start; a number can at p itself
        candidates = [links[link]] if link < len(links) else []
        if email < len(emails):
            candidates.append(max(p, emails[email][0]))
        if p <= last_digit:
            candidates.append(p)
        if not candidates:
            return
        p = min(candidates)
        url = _URL_AT.match(text, p, end)
        if url:
            match = url.span()
        elif email < len(emails) and emails[email][0] <= p:
            match = (p, emails[email][2])
        elif p <= last_digit:
            match = (p, end)
        else:
            p += 1  # a link's start whose link is empty ("www." then a space)
            continue
        out.append(match)
        p = match[1]


def _join_symbols(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and text[joined[-1][1]:start] == " " and (
                all(is_symbol(c) for c in text[start:end])
                or all(is_symbol(c) for c in text[joined[-1][0]:joined[-1][1]])):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def protect(text: str) -> Protected:
    """Replace the spans of ``text`` with placeholders (the first nine; later ones stay as text,
    for the vocabulary's byte fallback to carry)."""
    spans = find_spans(text)[:len(PLACEHOLDERS)]
    out, kept, at = [], [], 0
    for (start, end), placeholder in zip(spans, PLACEHOLDERS):
        out += [text[at:start], placeholder]
        kept.append(text[start:end])
        at = end
    out.append(text[at:])
    return Protected("".join(out), tuple(kept))


# A run of letters, or a placeholder: what ``protect_acronyms`` walks through in order.
_LETTERS_OR_PLACEHOLDER = re.compile(f"[{''.join(PLACEHOLDERS)}]|[^\\W\\d_]+")


def protect_acronyms(protected: Protected, is_acronym: Callable[[str], bool]) -> Protected:
    """``protected`` with each run of letters that ``is_acronym`` accepts (a word in capitals the
    model has no piece for, "EU", "TÜV", the "FBI" of "FBI-Gebäude") passed through as well, the
    placeholders numbered again in order of appearance, as ``protect`` numbers them. Read as
    typed, the model spelt such words letter by letter and then dropped or garbled them ("the
    EU" as "the USA", "vor dem ZDF" as "in front of them"). Up to nine spans in all, as
    ``protect``; the ones it had come first."""
    room = len(PLACEHOLDERS) - len(protected.spans)
    out, spans, at = [], [], 0
    for match in _LETTERS_OR_PLACEHOLDER.finditer(protected.text):
        token = match.group()
        if token in PLACEHOLDERS:
            span = protected.spans[PLACEHOLDERS.index(token)]
        elif room > 0 and is_acronym(token):
            span, room = token, room - 1
        else:
            continue
        out += [protected.text[at:match.start()], PLACEHOLDERS[len(spans)]]
        spans.append(span)
        at = match.end()
    out.append(protected.text[at:])
    return Protected("".join(out), tuple(spans))


def restore(translation: str, spans: tuple[str, ...]) -> str:
    """Put each span back where the model put its placeholder; append any it left out."""
    missing = []
    for placeholder, span in zip(PLACEHOLDERS, spans):
        at = translation.find(placeholder)
        if at < 0:
            missing.append(span)
            continue
        # The first is the span; a repeat is the model's stutter, not a second copy of it.
        rest = translation[at + 1:].replace(placeholder, "")
        translation = translation[:at] + span + rest
    # Placeholders the source never had (a model's invention) carry nothing: drop them.
    translation = "".join(c for c in translation if c not in PLACEHOLDERS)
    translation = re.sub(r"(?<=\S)  +(?=\S)", " ", translation)  # where a dropped one stood
    if missing:
        translation = _append(translation, " ".join(missing))
    return translation


def _append(translation: str, extra: str) -> str:
    """``extra`` before the translation's final punctuation: "A dog runs 🐕." not "...runs. 🐕"."""
    body = translation.rstrip()
    end = len(body)
    while end > 0 and body[end - 1] in ".!?":
        end -= 1
    return f"{body[:end].rstrip()} {extra}{body[end:]}".strip()


_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*", re.UNICODE)


def repair_copies(source: str, translation: str, is_common: Callable[[str], bool],
                  similarity: float = 0.7) -> str:
    """Names the model copied with a letter or two wrong ("Schmidt" -> "Schidtid"), put right.

    A capitalised source word of three or more letters that the translation lacks replaces the
    translation's most similar capitalised word (``difflib`` ratio at least ``similarity``) if
    that word is neither in the source nor a common word of the vocabulary (``is_common``, e.g.
    a single SentencePiece piece): so "Camera" never overwrites "camera", nor "Amerikaner"
    "American". Each word of the translation is replaced at most once."""
    wanted = [w for w in dict.fromkeys(m.group() for m in _WORD.finditer(source))
              if w[0].isupper() and len(w) >= 3 and not re.search(rf"\b{re.escape(w)}\b",
                                                                   translation)]
    if not wanted:
        return translation
    in_source = {m.group() for m in _WORD.finditer(source)}
    words = [m for m in _WORD.finditer(translation)
             if m.group()[0].isupper() and m.group() not in in_source
             and not is_common(m.group())]
    pairs = sorted(((SequenceMatcher(None, w, m.group()).ratio(), -i, w)
                    for w in wanted for i, m in enumerate(words)), reverse=True)
    replace: dict[int, str] = {}
    for ratio, minus_i, w in pairs:
        i = -minus_i
        if ratio < similarity:
            break
        if i not in replace and w not in replace.values():
            replace[i] = w
    for i in sorted(replace, reverse=True):
        m = words[i]
        translation = translation[:m.start()] + replace[i] + translation[m.end():]
    return translation
