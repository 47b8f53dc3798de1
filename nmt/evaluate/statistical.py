"""The statistical baseline: eflomal (Östling & Tiedemann 2016, ``pip install eflomal``), trained
as such aligners are used: on a parallel corpus with the sentences to align appended, all
lowercased, both directions, then symmetrised."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

from nmt.core.errors import NmtError
from nmt.decode.alignment import grow_diag

Links = set[tuple[int, int]]
TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")  # words and punctuation, as the gold sets split


def tokenize(text: str) -> str:
    return " ".join(TOKEN.findall(text))


def read_links(path: Path) -> list[Links]:
    return [{tuple(int(x) for x in item.split("-")) for item in line.split()}
            for line in path.read_text(encoding="utf-8").splitlines()]


def eflomal_links(corpus: tuple[list[str], list[str]], gold_src: list[list[str]],
                  gold_tgt: list[list[str]], seed: int = 1) -> dict[str, list[Links]]:
    """Links of the gold pairs, (source, target) 0-indexed, by symmetrisation: ``forward``,
    ``reverse``, ``intersect``, ``union`` and ``grow-diag``."""
    try:
        import eflomal
    except ImportError:
        raise NmtError("the statistical baseline needs eflomal: pip install eflomal") from None
    src = [tokenize(s).lower() for s in corpus[0]] + [" ".join(w).lower() for w in gold_src]
    tgt = [tokenize(t).lower() for t in corpus[1]] + [" ".join(w).lower() for w in gold_tgt]
    with tempfile.TemporaryDirectory() as folder:
        fwd, rev = Path(folder) / "fwd", Path(folder) / "rev"
        eflomal.Aligner().align(io.StringIO("\n".join(src) + "\n"), io.StringIO("\n".join(tgt) + "\n"),
                                links_filename_fwd=str(fwd), links_filename_rev=str(rev))
        forward, reverse = read_links(fwd), read_links(rev)
    n = len(gold_src)
    forward, reverse = forward[-n:], reverse[-n:]
    return {"forward": forward, "reverse": reverse,
            "intersect": [f & r for f, r in zip(forward, reverse)],
            "union": [f | r for f, r in zip(forward, reverse)],
            "grow-diag": [grow_diag(f & r, f | r) for f, r in zip(forward, reverse)]}
