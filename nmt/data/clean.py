"""Cleaning while streaming: what a pair must be to be trained on, every drop counted.

Empty sides, pairs whose word counts differ more than ``data.max_length_ratio`` times (Moses'
clean-corpus-n uses 9: a misaligned pair, not a translation) and exact duplicates of an earlier
pair are dropped here; pairs over ``data.max_tokens_per_sentence`` subwords are dropped once
they are encoded (nmt/data/prepare.py). Duplicates are found by Python's 64-bit hash of the
pair (a preparation reads the corpus in one process, from its start, so the hashes agree):
about 60 bytes of memory per distinct pair while preparing (600 MB at 10M pairs).
"""

from __future__ import annotations

from collections import Counter

from nmt.data.sources import Record


class Cleaner:
    def __init__(self, max_length_ratio: float, dedupe: bool):
        self.max_length_ratio, self.dedupe = max_length_ratio, dedupe
        self.seen: set[int] = set()
        self.dropped: Counter = Counter()
        self.read = 0

    def keep(self, record: Record) -> bool:
        """Whether to train on this record (all of its sentences); counts why not."""
        self.read += 1
        if any(not text.strip() for text in record):
            self.dropped["empty"] += 1
            return False
        if self.max_length_ratio:
            words = [len(text.split()) for text in record]
            if max(words) > self.max_length_ratio * min(words):
                self.dropped["length ratio"] += 1
                return False
        if self.dedupe:
            key = hash(record)
            if key in self.seen:
                self.dropped["duplicate"] += 1
                return False
            self.seen.add(key)
        return True

    def summary(self) -> str:
        kept = self.read - sum(self.dropped.values())
        drops = ", ".join(f"{n:,} {why}" for why, n in sorted(self.dropped.items())) or "none"
        return f"{self.read:,} pairs read, {kept:,} kept; dropped: {drops}"
