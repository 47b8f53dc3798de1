"""Splitting text into sentences (and over-long sentences into pieces) and joining it back.

Models are trained on single sentences; a paragraph is translated sentence by sentence and the
whitespace between sentences is kept, so the output has the input's layout. A "sentence" with
more words than a model should read at once is cut into word chunks rather than truncated.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) before whitespace.
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*(\s+)")
MAX_WORDS = 80


def split_sentences(text: str, max_words: int = MAX_WORDS) -> list[tuple[str, str]]:
    """(sentence, separator after it) pairs; ``"".join(s + sep)`` gives ``text`` back."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        pieces.append((text[start:match.start(1)], match.group(1)))
        start = match.end(1)
    if start < len(text) or not pieces:
        pieces.append((text[start:], ""))
    out: list[tuple[str, str]] = []
    for sentence, separator in pieces:
        lines = sentence.split("\n")
        for i, line in enumerate(lines):
            sep = "\n" if i < len(lines) - 1 else separator
            out.extend(_chunk(line, sep, max_words))
    return out


def _chunk(sentence: str, separator: str, max_words: int) -> list[tuple[str, str]]:
    words = sentence.split(" ")
    if len(words) <= max_words:
        return [(sentence, separator)]
    chunks = [" ".join(words[i:i + max_words]) for i in range(0, len(words), max_words)]
    return [(c, " ") for c in chunks[:-1]] + [(chunks[-1], separator)]


def join_sentences(translated: list[str], pieces: list[tuple[str, str]]) -> str:
    return "".join(t + sep for t, (_, sep) in zip(translated, pieces))
