"""The token store: a prepared corpus as memory-mapped arrays of subword ids, in shards.

One shard per chunk of the input (nmt/data/prepare.py), three ``.npy`` files each:

    00000.src.npy  every source sentence's ids, one after the other (uint16 when the vocabulary
    00000.tgt.npy  fits 65,536 ids, else uint32): 2 bytes a token instead of a Python int's 28
    00000.idx.npy  int64 (n + 1, 2): where pair i starts on each side; pair i is
                   src[idx[i, 0]:idx[i + 1, 0]], tgt[idx[i, 1]:idx[i + 1, 1]]

as fairseq's ``.bin`` + ``.idx``. ``manifest.json`` lists the shards with their sizes, the
directions each holds (rows grouped by direction) and the SHA-256 of every file. Files are read
through ``np.load(mmap_mode="r")``: a process touches only the pages of the pairs it reads, so
memory does not grow with the corpus, and every process of a machine shares the page cache.

A shard's files are checked against the manifest the first time a process opens it (a flipped
byte is named there, before it trains on it); hashing is about 1 s a GB, paid once per shard
and process, lazily, so the first step never waits for the whole corpus to be read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from nmt.core.errors import NmtError
from nmt.core.files import atomic_write, atomic_write_text, sha256

FORMAT = 1
MANIFEST = "manifest.json"
PARTIAL = "partial.json"  # the shards written so far, while preparation runs
SIDES = ("src", "tgt", "idx")


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def shard_arrays(src_ids: list[list[int]], tgt_ids: list[list[int]], dtype: np.dtype
                 ) -> dict[str, np.ndarray]:
    """The three arrays of a shard from its pairs' ids."""
    idx = np.zeros((len(src_ids) + 1, 2), dtype=np.int64)
    idx[1:, 0] = np.cumsum([len(s) for s in src_ids])
    idx[1:, 1] = np.cumsum([len(t) for t in tgt_ids])
    flat = lambda rows: np.fromiter(chain.from_iterable(rows), dtype=dtype,  # noqa: E731
                                    count=int(idx[-1, 0] if rows is src_ids else idx[-1, 1]))
    return {"src": flat(src_ids), "tgt": flat(tgt_ids), "idx": idx}


def write_shard(folder: Path, name: str, arrays: dict[str, np.ndarray],
                directions: list[tuple[str, int]]) -> dict:
    """Write a shard's files atomically; its manifest entry."""
    digests = {}
    for side in SIDES:
        path = folder / f"{name}.{side}.npy"
        atomic_write(path, lambda out, a=arrays[side]: np.save(out, a, allow_pickle=False))
        digests[path.name] = sha256(path)
    idx = arrays["idx"]
    return {"name": name, "pairs": len(idx) - 1, "src_tokens": int(idx[-1, 0]),
            "tgt_tokens": int(idx[-1, 1]), "directions": directions, "sha256": digests}


def write_manifest(folder: Path, manifest: dict, final: bool) -> None:
    atomic_write_text(folder / (MANIFEST if final else PARTIAL),
                      json.dumps(manifest, indent=1) + "\n")


def read_manifest(folder: Path, final: bool = True) -> dict | None:
    path = folder / (MANIFEST if final else PARTIAL)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NmtError(f"{path}: not a token store manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise NmtError(f"{path}: not a token store manifest of format {FORMAT}")
    return manifest


@dataclass
class Shard:
    src: np.ndarray
    tgt: np.ndarray
    idx: np.ndarray


class TokenStore:
    """A prepared corpus, read: pair lengths and ids by global index (shards one after another)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        if manifest is None:
            raise NmtError(f"{self.folder / MANIFEST}: missing, so this is not a prepared "
                           "corpus (run `nmt data prepare`)")
        self.manifest = manifest
        self.shards = manifest["shards"]
        self.starts = np.cumsum([0] + [s["pairs"] for s in self.shards])
        self._open: dict[int, Shard] = {}
        self.bytes_read = 0  # of token ids, by ``pairs``: what this process touched

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shards_opened(self) -> int:
        return len(self._open)

    @property
    def key(self) -> str:
        return self.manifest["key"]

    def shard(self, number: int) -> Shard:
        """Shard ``number``'s arrays, memory-mapped; its files checked the first time."""
        if number not in self._open:
            entry = self.shards[number]
            arrays = {}
            for side in SIDES:
                path = self.folder / f"{entry['name']}.{side}.npy"
                if not path.is_file():
                    raise NmtError(f"{path}: missing from the token store")
                if sha256(path) != entry["sha256"][path.name]:
                    raise NmtError(f"{path}: damaged (its SHA-256 differs from "
                                   f"{self.folder / MANIFEST}); prepare the corpus again")
                arrays[side] = np.load(path, mmap_mode="r", allow_pickle=False)
            self._open[number] = Shard(**arrays)
        return self._open[number]

    def lengths(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """Source and target lengths (subwords) of every pair of shard ``number``."""
        lengths = np.diff(np.asarray(self.shard(number).idx), axis=0)
        return lengths[:, 0], lengths[:, 1]

    def locate(self, index: int) -> tuple[int, int]:
        number = int(np.searchsorted(self.starts, index, side="right")) - 1
        return number, index - int(self.starts[number])

    def pairs(self, indices) -> tuple[list[list[int]], list[list[int]]]:
        """The ids of the pairs at these global indices."""
        src, tgt = [], []
        for index in indices:
            number, local = self.locate(int(index))
            shard = self.shard(number)
            (s0, t0), (s1, t1) = shard.idx[local], shard.idx[local + 1]
            src.append(shard.src[s0:s1].tolist())
            tgt.append(shard.tgt[t0:t1].tolist())
            self.bytes_read += (s1 - s0 + t1 - t0) * shard.src.itemsize
        return src, tgt

    def direction_ranges(self):
        """(direction, first global index, end) of each direction's rows, shard by shard."""
        for number, entry in enumerate(self.shards):
            at = int(self.starts[number])
            for direction, count in entry["directions"]:
                yield direction, at, at + count
                at += count

    def target_length(self, index: int) -> int:
        number, local = self.locate(index)
        idx = self.shard(number).idx
        return int(idx[local + 1, 1] - idx[local, 1])
