"""Where training pairs come from, read as streams: nothing here holds a corpus in memory.

A corpus is named by a spec (``data.corpora`` takes several, each with a sampling weight):

    a.nl+a.en            two aligned text files (plain or .gz), one sentence per line
    pairs.tsv[.gz]       source<TAB>target lines
    pairs.parquet        a Parquet or JSON-lines file (``.jsonl``, ``.json``), read by ``datasets``
    folder/              a dataset saved by ``datasets`` (``save_to_disk``), memory-mapped Arrow
    hf:NAME[:CONFIG]     a Hugging Face hub dataset, streamed (``wmt/wmt19:de-en``)

Dataset rows are either ``{"translation": {"nl": ..., "en": ...}}`` (the hub's translation
datasets) or have one column per language code. ``SPEC@W`` uses each pair of that corpus W
times an epoch (W = 0.5: a seeded half of them), as fairseq's and OpenNMT's corpus weights do.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nmt.core.errors import NmtError

Record = tuple[str, ...]  # one sentence per language, in the order of the stream's languages
DATASET_SUFFIXES = (".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class Corpus:
    spec: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Corpus:
        spec, _, weight = text.rpartition("@") if "@" in text else (text, "", "1")
        try:
            value = float(weight)
        except ValueError:
            raise NmtError(f"data.corpora {text!r}: the weight after @ must be a number") from None
        if not spec or not value > 0:
            raise NmtError(f"data.corpora {text!r}: expected SPEC or SPEC@WEIGHT (weight > 0)")
        return cls(spec, value)

    def files(self) -> list[Path]:
        """The local files (or folder) it reads; none for a hub dataset."""
        if self.spec.startswith("hf:"):
            return []
        return [Path(p) for p in self.spec.split("+")]

    def check(self) -> None:
        for path in self.files():
            if not path.exists():
                raise NmtError(f"{path}: data file not found")


def open_text(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        return opener(path, "rt", encoding="utf-8", newline="\n")
    except OSError as error:
        raise NmtError(f"{path}: cannot read: {error}") from None


def text_lines(path: Path) -> Iterator[str]:
    with open_text(path) as handle:
        try:
            for line in handle:
                yield line.rstrip("\r\n")
        except (OSError, EOFError, UnicodeDecodeError) as error:
            raise NmtError(f"{path}: cannot read: {error}") from None


def aligned_files(paths: list[Path]) -> Iterator[Record]:
    """Lines of several files side by side; their line counts must agree."""
    iterators = [text_lines(p) for p in paths]
    count = 0
    while True:
        row = [next(it, None) for it in iterators]
        if all(r is None for r in row):
            return
        if any(r is None for r in row):
            ended = [str(p) for p, r in zip(paths, row) if r is None]
            raise NmtError(f"line counts differ: {', '.join(ended)} ended after {count} lines, "
                           f"before {', '.join(str(p) for p, r in zip(paths, row) if r is not None)}")
        count += 1
        yield tuple(row)


def tsv_pairs(path: Path) -> Iterator[Record]:
    for number, line in enumerate(text_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise NmtError(f"{path}:{number}: expected 'source<TAB>target', found {len(parts)} fields")
        yield parts[0], parts[1]


def dataset_rows(spec: str):
    """The rows of a dataset spec, streamed (or memory-mapped, for a saved dataset)."""
    import datasets

    try:
        if spec.startswith("hf:"):
            name, _, config = spec[3:].partition(":")
            return datasets.load_dataset(name, config or None, split="train", streaming=True)
        path = Path(spec)
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            return loaded["train"] if isinstance(loaded, datasets.DatasetDict) else loaded
        kind = "parquet" if path.suffix == ".parquet" else "json"
        return datasets.load_dataset(kind, data_files=str(path), split="train", streaming=True)
    except Exception as error:  # network, format and cache errors all end the same way for a user
        raise NmtError(f"{spec}: cannot read as a dataset: {error}") from None


def dataset_records(spec: str, langs: tuple[str, ...]) -> Iterator[Record]:
    for number, row in enumerate(dataset_rows(spec)):
        texts = row.get("translation", row) if isinstance(row, dict) else {}
        try:
            yield tuple(str(texts[lang]) for lang in langs)
        except KeyError:
            raise NmtError(f"{spec}: row {number} has no {' / '.join(langs)} text (columns: "
                           f"{', '.join(texts)}); rows need a 'translation' dict or one column "
                           "per language") from None


def corpus_records(corpus: Corpus, langs: tuple[str, ...]) -> Iterator[Record]:
    """One corpus's records, each sentence of ``langs`` (two for a TSV)."""
    spec = corpus.spec
    files = corpus.files()
    if len(files) > 1:
        if len(files) != len(langs):
            raise NmtError(f"{spec}: {len(files)} files for the languages {', '.join(langs)}")
        return aligned_files(files)
    if spec.startswith("hf:") or files[0].is_dir() or files[0].suffix in DATASET_SUFFIXES:
        return dataset_records(spec, langs)
    if ".tsv" in files[0].suffixes:
        return tsv_pairs(files[0])
    raise NmtError(f"{spec}: not a corpus spec (two files A+B, a .tsv, .parquet or .jsonl file, "
                   "a dataset folder, or hf:NAME)")


def weighted(records: Iterator[Record], weight: float, seed: str) -> Iterator[Record]:
    """Each record ``weight`` times: the whole part always, the fraction by a seeded draw."""
    if weight == 1:
        yield from records
        return
    rng, whole, part = random.Random(f"weight/{seed}"), int(weight), weight - int(weight)
    for record in records:
        for _ in range(whole + (rng.random() < part)):
            yield record


def mixed(corpora: list[Corpus], langs: tuple[str, ...], seed: int | str,
          block: int = 1000) -> Iterator[Record]:
    """The corpora interleaved in blocks in proportion to their weights (so that every part of
    the stream, and every shard of the store, draws on all of them), each ``weighted``."""
    streams = [weighted(corpus_records(c, langs), c.weight, f"{seed}/{i}")
               for i, c in enumerate(corpora)]
    if len(streams) == 1:
        yield from streams[0]
        return
    sizes = [max(1, round(block * c.weight)) for c in corpora]
    live = list(range(len(streams)))
    while live:
        for i in list(live):
            for _ in range(sizes[i]):
                record = next(streams[i], None)
                if record is None:
                    live.remove(i)
                    break
                yield record
