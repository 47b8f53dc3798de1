"""Word alignments scored on gold: alignment error rate, precision and recall (Och & Ney 2003).

A gold set is two files: ``NAME.txt`` (``source tokens ||| target tokens`` per line, tokenized)
and ``NAME.talp`` (that line's links, ``i-j`` sure and ``ipj`` possible, 1-indexed source and
target positions). With A the predicted links, S the sure and P the possible ones (S within P):

    precision = |A n P| / |A|      recall = |A n S| / |S|
    AER = 1 - (|A n S| + |A n P|) / (|A| + |S|)

Links here are 0-indexed (source, target) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmt.core.errors import NmtError

Links = set[tuple[int, int]]


@dataclass(frozen=True)
class GoldPair:
    src: list[str]
    tgt: list[str]
    sure: Links
    possible: Links  # sure links included


def parse_links(line: str, where: str) -> tuple[Links, Links]:
    sure, possible = set(), set()
    for item in line.split():
        kind = "p" if "p" in item else "-"
        try:
            i, j = (int(x) for x in item.split(kind))
        except ValueError:
            raise NmtError(f"{where}: {item!r} is not a link (i-j or ipj)") from None
        link = (i - 1, j - 1)
        possible.add(link)
        if kind == "-":
            sure.add(link)
    return sure, possible


def read_gold(stem: str | Path) -> list[GoldPair]:
    """``stem``.txt and ``stem``.talp (e.g. ../shared/data/alignment/de-en.dev)."""
    text, talp = Path(f"{stem}.txt"), Path(f"{stem}.talp")
    for path in (text, talp):
        if not path.is_file():
            raise NmtError(f"{path}: file not found (a gold set is NAME.txt and NAME.talp)")
    lines = text.read_text(encoding="utf-8").splitlines()
    link_lines = talp.read_text(encoding="utf-8").splitlines()
    if len(lines) != len(link_lines):
        raise NmtError(f"{talp}: {len(link_lines)} lines, but {text} has {len(lines)}")
    pairs = []
    for n, (line, link_line) in enumerate(zip(lines, link_lines), 1):
        if "|||" not in line:
            raise NmtError(f"{text}:{n}: expected 'source ||| target'")
        src, tgt = (side.split() for side in line.split("|||", 1))
        sure, possible = parse_links(link_line, f"{talp}:{n}")
        if any(i >= len(src) or j >= len(tgt) or i < 0 or j < 0 for i, j in possible):
            raise NmtError(f"{talp}:{n}: a link points past the sentence")
        pairs.append(GoldPair(src, tgt, sure, possible))
    return pairs


def alignment_scores(predicted: list[Links], gold: list[GoldPair]) -> dict:
    """AER, precision and recall of predicted links over a gold set (summed over pairs)."""
    a = s = a_s = a_p = 0
    for links, pair in zip(predicted, gold, strict=True):
        a, s = a + len(links), s + len(pair.sure)
        a_s, a_p = a_s + len(links & pair.sure), a_p + len(links & pair.possible)
    return {"aer": round(100 * (1 - (a_s + a_p) / max(1, a + s)), 2),
            "precision": round(100 * a_p / max(1, a), 2),
            "recall": round(100 * a_s / max(1, s), 2), "links": a}


def pharaoh(links: Links) -> str:
    """Links as fairseq and Marian print them: ``i-j`` (source-target, 0-indexed), sorted."""
    return " ".join(f"{i}-{j}" for i, j in sorted(links))
