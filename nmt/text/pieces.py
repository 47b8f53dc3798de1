"""What a translation is, and how translations of pieces of a text are put back together.

A text is cut into sentences (nmt/text/sentences.py), and a sentence may be cut again: halved when it is
longer than the model reads at once, or split into clauses when its translation came out
implausibly short (nmt/decode/translator.py). Each piece is translated alone; these functions join the
pieces' translations, their n-best alternatives and their attention back into one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from nmt.text.casing import lowercase_inside_sentence
from nmt.text.sentences import join_sentences

_CLAUSE = re.compile(r"[,;:]\s+")
# Coordinating conjunctions, the same word at the same place in every language. A clause that
# starts with one comes out of a caption-trained model without it ("und eine Frau sitzt" ->
# "A woman sits"), so a split before one moves it into the separator, translated by this table.
COORDINATORS = {
    "de": ("und", "oder", "aber"),
    "en": ("and", "or", "but"),
    "fr": ("et", "ou", "mais"),
    "cs": ("a", "nebo", "ale"),
}


@dataclass(frozen=True)
class Translation:
    text: str
    score: float
    alternatives: list[tuple[str, float]]  # n-best after the first
    tokens: int = 0  # subword tokens of the translation
    alignment: Alignment | None = None  # where the model looked, when asked for
    # (source word, translation word) links, words split on whitespace, when asked for
    links: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class Alignment:
    """Cross-attention of the last decoder layer over a source/target pair, averaged over heads."""

    src_tokens: list[str]
    tgt_tokens: list[str]
    weights: list[list[float]]  # (target tokens, source tokens)


@dataclass(frozen=True)
class Cut:
    """A text and, when it is cut before translation, its pieces (as ``split_clauses`` and
    ``halve`` give them) with each piece's own cut: a tree whose leaves are what the model reads."""

    text: str
    ids: list[int] = field(default_factory=list)  # the subwords the model reads, at a leaf
    pieces: list[tuple[str, str]] = field(default_factory=list)
    parts: list[Cut] = field(default_factory=list)

    def leaves(self) -> list[Cut]:
        return [leaf for part in self.parts for leaf in part.leaves()] if self.parts else [self]

    def assemble(self, translations: Iterator[Translation], tgt_lang: str) -> Translation:
        """The text's translation from its leaves' translations, taken in ``leaves`` order."""
        if not self.parts:
            return next(translations)
        return join_parts([part.assemble(translations, tgt_lang) for part in self.parts],
                          self.pieces, tgt_lang)


def join_translations(part: list[Translation], pieces: list[tuple[str, str]]) -> Translation:
    """The translations of a text's sentences put back together with the text's own spacing;
    the k-th alternative of the text joins the k-th alternative of every sentence."""
    if len(part) == 1:
        return part[0]
    if not part:
        return Translation("", 0.0, [])
    depth = max(len(t.alternatives) for t in part)
    alternatives = [
        (join_sentences([t.alternatives[k][0] if k < len(t.alternatives) else t.text
                         for t in part], pieces),
         sum(t.alternatives[k][1] if k < len(t.alternatives) else t.score for t in part))
        for k in range(depth)]
    return Translation(join_sentences([t.text for t in part], pieces),
                       sum(t.score for t in part), alternatives, sum(t.tokens for t in part),
                       links=join_links(part, pieces))


def join_links(part: list[Translation], pieces: list[tuple[str, str]]):
    """The sentences' word links as links of the joined text: each sentence's words counted
    after those of the sentences before it, on both sides."""
    if any(t.links is None for t in part):
        return None
    out, src_at, tgt_at = [], 0, 0
    for t, (sentence, _) in zip(part, pieces):
        out += [(i + src_at, j + tgt_at) for i, j in t.links]
        src_at, tgt_at = src_at + len(sentence.split()), tgt_at + len(t.text.split())
    return tuple(out)


def halve(text: str) -> list[tuple[str, str]]:
    """Two pieces at the space nearest the middle (at the middle if there is none)."""
    middle = len(text) // 2
    spaces = [m.start() for m in re.finditer(r"\s", text)]
    if not spaces:
        return [(text[:middle], ""), (text[middle:], "")]
    cut = min(spaces, key=lambda i: abs(i - middle))
    return [(text[:cut], text[cut]), (text[cut + 1:], "")]


def split_clauses(text: str, src_lang: str = "", tgt_lang: str = "") -> list[tuple[str, str]] | None:
    """Two clauses at the punctuation nearest the middle, or None when there is none. A mark
    followed by a coordinating conjunction is preferred (it joins two clauses, where a bare comma
    may list nouns), and the conjunction goes into the separator, in the target language."""
    marks = list(_CLAUSE.finditer(text))
    if not marks:
        return None
    words = COORDINATORS.get(src_lang, ()) if tgt_lang in COORDINATORS else ()
    joining = [m for m in marks if _coordinator(text[m.end():], words) is not None]
    middle = len(text) // 2
    mark = min(joining or marks, key=lambda m: abs(m.start() - middle))
    index = _coordinator(text[mark.end():], words)
    if index is None:
        return [(text[:mark.start()], mark.group(0)), (text[mark.end():], "")]
    rest = text[mark.end() + len(words[index]):].lstrip()
    return [(text[:mark.start()], f"{mark.group(0)}{COORDINATORS[tgt_lang][index]} "), (rest, "")]


def _coordinator(clause: str, words: tuple[str, ...]) -> int | None:
    """The index in ``words`` of the conjunction ``clause`` starts with (a word, then more)."""
    first, _, rest = clause.partition(" ")
    return words.index(first) if first in words and rest.strip() else None


def join_parts(parts: list[Translation], pieces: list[tuple[str, str]],
               tgt_lang: str = "") -> Translation:
    """Translations of the pieces of one text, joined by the separators ``pieces`` give. A
    clause translated alone ends with a full stop that must not stand before the next one, and
    starts with the capital of a sentence, which inside one goes where its source piece starts
    in lowercase (not "Anna")."""
    trimmed = []
    for i, (t, (source, sep)) in enumerate(zip(parts, pieces)):
        inside = i > 0 and source[:1].islower()
        trimmed.append(Translation(
            _fit_piece(t.text, sep, inside, tgt_lang), t.score,
            [(_fit_piece(a, sep, inside, tgt_lang), s) for a, s in t.alternatives], t.tokens))
    joined = join_translations(trimmed, pieces)
    if all(t.alignment is not None for t in parts):
        joined = dataclasses.replace(joined, alignment=stack_alignments(
            [t.alignment for t in parts]))
    return joined


def _fit_piece(text: str, separator: str, inside: bool, tgt_lang: str) -> str:
    text = text.rstrip(".") if separator.strip() else text
    first = text.split(" ", 1)[0]
    if inside and first and lowercase_inside_sentence(first, tgt_lang):
        return text[:1].lower() + text[1:]
    return text


def stack_alignments(parts: list[Alignment]) -> Alignment:
    """The alignments of a sentence's pieces as one: each piece looks only at its own source."""
    src = [tok for a in parts for tok in a.src_tokens]
    rows, before = [], 0
    for a in parts:
        after = len(src) - before - len(a.src_tokens)
        rows += [[0.0] * before + row + [0.0] * after for row in a.weights]
        before += len(a.src_tokens)
    return Alignment(src, [tok for a in parts for tok in a.tgt_tokens], rows)
