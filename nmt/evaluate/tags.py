"""Tags placed by alignment, measured on gold: a set of HTML sources built from gold pairs.

For each gold pair, a span of 1 to 3 source words whose sure-linked target words are contiguous
and linked to nothing outside the span (a consistent phrase pair, as phrase extraction defines
it) is wrapped in ``<b>``; the model reads the gold target teacher-forced, its served word links
place the tag (nmt/text/markup.py), and the tag counts as placed when it wraps exactly the gold
target words of the span.
"""

from __future__ import annotations

import random

from nmt.evaluate.alignment import GoldPair


def consistent_spans(pair: GoldPair, longest: int = 3) -> list[tuple[int, int, int, int]]:
    """(a, b, c, d): source words [a, b) whose sure links reach exactly target words [c, d),
    and no other source word links into [c, d)."""
    out = []
    for a in range(len(pair.src)):
        for b in range(a + 1, min(a + longest, len(pair.src)) + 1):
            targets = {j for i, j in pair.sure if a <= i < b}
            if not targets:
                continue
            c, d = min(targets), max(targets) + 1
            if len(targets) != d - c:
                continue
            if any(c <= j < d and not a <= i < b for i, j in pair.possible):
                continue
            out.append((a, b, c, d))
    return out


def tag_set(gold: list[GoldPair], seed: int = 0) -> list[tuple[int, tuple[int, int, int, int]]]:
    """One span per gold pair that has one: (pair index, span), drawn with ``seed``."""
    rng = random.Random(f"tags/{seed}")
    chosen = []
    for n, pair in enumerate(gold):
        spans = consistent_spans(pair)
        if spans:
            chosen.append((n, rng.choice(spans)))
    return chosen


def wrapped(words: list[str], a: int, b: int) -> str:
    from html import escape

    escaped = [escape(w, quote=False) for w in words]
    return " ".join(escaped[:a] + ["<b>" + " ".join(escaped[a:b]) + "</b>"] + escaped[b:])


def tag_placement(translator, gold: list[GoldPair], seed: int = 0) -> dict:
    """The share of tags that wrap exactly their gold target words, with the translator's
    served links between each source and its gold target; and tags lost or repeated."""
    from bs4 import BeautifulSoup

    from nmt.text.markup import translate_html

    exact = lost = 0
    chosen = tag_set(gold, seed)
    for n, (a, b, c, d) in chosen:
        pair = gold[n]
        target = " ".join(pair.tgt)

        def forced(texts, target=target):
            return [(target, translator.word_alignment(text, target)) for text in texts]

        out = translate_html(wrapped(pair.src, a, b), forced)
        bold = BeautifulSoup("<body>" + out, "html5lib").body.find_all("b")
        if len(bold) != 1:
            lost += 1
            continue
        exact += bold[0].get_text().split() == pair.tgt[c:d]
    return {"tags": len(chosen), "exact": round(exact / max(1, len(chosen)), 4),
            "lost_or_repeated": lost, "seed": seed}
