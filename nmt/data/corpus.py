"""Parallel corpora: Multi30k fetched and checked, its splits read (a training corpus is streamed:
nmt/data/sources.py).

Multi30k lives in ``data/multi30k/`` as ``{split}.{lang}.gz``, one sentence per line, aligned by
line number. ``fetch_multi30k`` gets it from the corpus's public repository (pinned commit), the
``datasets`` hub, or a local mirror, and checks every file against ``data/multi30k.sha256``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from nmt.core.config import directions
from nmt.core.errors import NmtError
from nmt.core.files import sha256

MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")
MULTI30K_LANGS = ("en", "de", "fr", "cs")
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}
MULTI30K_LINES = {"train": 29000, "val": 1014, "test_2016_flickr": 1000}
MULTI30K_COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
MULTI30K_URL = f"https://github.com/multi30k/dataset/raw/{MULTI30K_COMMIT}/data/task1/raw"
MULTI30K_HUB = "bentrevett/multi30k"  # en-de only; splits train / validation / test
CHECKSUMS = Path(__file__).resolve().parents[2] / "data" / "multi30k.sha256"


# ----------------------------------------------------------------------------- reading files


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file (gzip-compressed when it ends in .gz), without newlines."""
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"{path}: file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as handle:
            return [line.rstrip("\r\n") for line in handle]
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise NmtError(f"{path}: cannot read: {error}") from None


def split_file(folder: str | Path, split: str, lang: str) -> Path:
    """The file of one split and language in a corpus folder: ``{split}.{lang}.gz`` or plain."""
    folder = Path(folder)
    for candidate in (folder / f"{split}.{lang}.gz", folder / f"{split}.{lang}"):
        if candidate.is_file():
            return candidate
    if not folder.is_dir():
        raise NmtError(
            f"{folder}: corpus folder not found (run `nmt data fetch multi30k` to get Multi30k)"
        )
    raise NmtError(f"{folder}: no {split}.{lang}.gz or {split}.{lang} in this folder")


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """Two aligned files; their line counts must agree."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise NmtError(
            f"line counts differ: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}"
        )
    return src, tgt


@dataclass(frozen=True)
class ParallelData:
    src: list[str]
    tgt: list[str]
    description: str

    def __len__(self) -> int:
        return len(self.src)


def load_directions(data, split: str) -> dict[str, ParallelData]:
    """Every pair of ``data.pairs`` in ``split``, built from the corpus's multi-parallel files
    (each language's file read once; all must have the same number of lines)."""
    lines: dict[str, list[str]] = {}
    paths: dict[str, Path] = {}
    for lang in dict.fromkeys(lang for pair in directions(data) for lang in pair):
        paths[lang] = split_file(data.corpus, split, lang)
        lines[lang] = read_lines(paths[lang])
    counts = {len(v) for v in lines.values()}
    if len(counts) > 1:
        raise NmtError("line counts differ: " + ", ".join(
            f"{paths[lang]} has {len(lines[lang])}" for lang in lines))
    return {f"{s}-{t}": ParallelData(lines[s], lines[t], f"{paths[s]} + {paths[t]}")
            for s, t in directions(data)}


# ----------------------------------------------------------------------------- fetching Multi30k


def read_checksums(path: Path = CHECKSUMS) -> dict[str, str]:
    sums = {}
    for line in read_lines(path):
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def fetch_multi30k(dest: str | Path = "data/multi30k", source: str = "github",
                   from_dir: str | Path | None = None, base_url: str = MULTI30K_URL,
                   log=print) -> Path:
    """Put Multi30k's 12 files in ``dest``, checked; nothing half-written is ever left there.

    Files are gathered in a temporary folder beside ``dest`` and moved in only once every one of
    them has passed its check.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    names = [f"{split}.{lang}.gz" for split in MULTI30K_SPLITS for lang in MULTI30K_LANGS]
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as staging:
        staging = Path(staging)
        if from_dir is not None:
            from_dir = Path(from_dir)
            for name in names:
                if not (from_dir / name).is_file():
                    raise NmtError(f"{from_dir / name}: file not found in the local copy")
                shutil.copyfile(from_dir / name, staging / name)
            _verify_checksums(staging, names, origin=from_dir)
        elif source == "github":
            for name in names:
                url = f"{base_url}/{name}"
                log(f"downloading {url}", file=sys.stderr)
                try:
                    with urllib.request.urlopen(url, timeout=60) as response, \
                            open(staging / name, "wb") as out:
                        shutil.copyfileobj(response, out)
                except OSError as error:
                    raise NmtError(f"{url}: download failed: {error}") from None
            _verify_checksums(staging, names, origin=base_url)
        elif source == "hub":
            names = _fetch_from_hub(staging)
        else:
            raise NmtError(f"unknown source {source!r}; use github or hub, or --from DIR")
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(staging / name, dest / name)
    return dest


def _verify_checksums(folder: Path, names: list[str], origin) -> None:
    expected = read_checksums()
    for name in names:
        actual = sha256(folder / name)
        if actual != expected.get(name):
            raise NmtError(
                f"{origin}/{name}: checksum mismatch (sha256 {actual[:12]}..., expected "
                f"{expected.get(name, 'none')[:12]}...); nothing was written"
            )


def _fetch_from_hub(staging: Path) -> list[str]:
    """Multi30k en-de from the ``datasets`` hub, written as gzip files, verified by line counts."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a required dependency
        raise NmtError("the `datasets` package is needed for --source hub") from None
    try:
        hub = datasets.load_dataset(MULTI30K_HUB)
    except Exception as error:  # network, hub or cache errors all end the same way for the user
        raise NmtError(f"datasets hub {MULTI30K_HUB}: cannot load: {error}") from None
    names = []
    for split, hub_split in (("train", "train"), ("val", "validation"),
                             ("test_2016_flickr", "test")):
        rows = hub[hub_split]
        if len(rows) != MULTI30K_LINES[split]:
            raise NmtError(f"datasets hub {MULTI30K_HUB} [{hub_split}]: {len(rows)} lines, "
                           f"expected {MULTI30K_LINES[split]}")
        for lang in ("en", "de"):
            name = f"{split}.{lang}.gz"
            with gzip.open(staging / name, "wt", encoding="utf-8") as out:
                for text in rows[lang]:
                    out.write(text.replace("\n", " ") + "\n")
            names.append(name)
    return names


# ----------------------------------------------------------------------------- statistics


def percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


def corpus_stats(folder: str | Path, langs: list[str], tokenizer=None) -> list[dict]:
    """Per split and language: lines, words, subwords (given a tokenizer), length percentiles."""
    folder = Path(folder)
    rows = []
    splits = sorted({p.name.split(".")[0] for p in folder.glob("*.*")
                     if p.name.split(".")[1:2] and p.name.split(".")[1] in langs},
                    key=lambda s: (s not in MULTI30K_SPLITS,
                                   MULTI30K_SPLITS.index(s) if s in MULTI30K_SPLITS else 0, s))
    if not splits:
        raise NmtError(f"{folder}: no {{split}}.{{lang}}.gz files for languages {', '.join(langs)}")
    for split in splits:
        for lang in langs:
            lines = read_lines(split_file(folder, split, lang))
            lengths = sorted(len(line.split()) for line in lines)
            row = {"split": split, "lang": lang, "lines": len(lines), "words": sum(lengths),
                   "p50": percentile(lengths, 50), "p95": percentile(lengths, 95),
                   "max": lengths[-1] if lengths else 0}
            if tokenizer is not None:
                row["subwords"] = sum(len(ids) for ids in tokenizer.encode(lines))
            rows.append(row)
    return rows
