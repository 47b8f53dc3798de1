"""Token-budget batches, bucketed by length, shuffled reproducibly.

A batch holds as many sentence pairs of similar length as fit in ``max_tokens`` source + target
tokens, padding counted, so every step does about the same work and little of it is padding.
The order of an epoch is a pure function of (seed, epoch): training can resume at any batch.

Training reads a token store (``StorePlan``): an epoch visits its shards in a seeded order and
plans each shard's batches when it reaches it (a shard of ~100,000 pairs in a fraction of a
second), so the first step never waits for the plan of a large corpus, and the plan in memory is
one shard's. Pairs are bucketed within a shard; the shards are uniform slices of the stream.
A store of one shard (Multi30k) is planned exactly as one corpus in memory (``BatchPlan``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) source ids + eos, padded with PAD_ID
    src_mask: torch.Tensor  # (B, S) True at real tokens
    tgt_in: torch.Tensor  # (B, T) bos + target ids (decoder input)
    tgt_out: torch.Tensor  # (B, T) target ids + eos (what the decoder must predict)
    n_src_tokens: int  # real tokens, padding excluded
    n_tgt_tokens: int
    indices: list[int]  # positions of these pairs in the corpus

    @property
    def size(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device) -> Batch:
        return replace(self, src=self.src.to(device), src_mask=self.src_mask.to(device),
                       tgt_in=self.tgt_in.to(device), tgt_out=self.tgt_out.to(device))


def pad(sequences: list[list[int]], pad_id: int = PAD_ID) -> torch.Tensor:
    width = max((len(s) for s in sequences), default=0)
    out = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def encode_source(ids: list[int]) -> list[int]:
    """The encoder reads a sentence followed by eos (the model sees where it ends)."""
    return list(ids) + [EOS_ID]


def collate(src_ids: list[list[int]], tgt_ids: list[list[int]], indices: list[int]) -> Batch:
    src = pad([encode_source(s) for s in src_ids])
    tgt_in = pad([[BOS_ID] + list(t) for t in tgt_ids])
    tgt_out = pad([list(t) + [EOS_ID] for t in tgt_ids])
    return Batch(src, src != PAD_ID, tgt_in, tgt_out,
                 sum(len(s) + 1 for s in src_ids), sum(len(t) + 1 for t in tgt_ids), indices)


def plan_batches(src_lengths: list[int], tgt_lengths: list[int], max_tokens: int,
                 seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """Group pair indices into batches of at most ``max_tokens`` padded tokens.

    Pairs are sorted by length (ties broken by a seeded shuffle), cut greedily into batches, and
    the batches shuffled, all from ``random.Random((seed, epoch))``: same inputs, same plan.
    """
    order = list(range(len(src_lengths)))
    rng = random.Random(f"{seed}/{epoch}")
    if shuffle:
        rng.shuffle(order)
    order.sort(key=lambda i: (src_lengths[i], tgt_lengths[i]))
    batches, current, max_src, max_tgt = [], [], 0, 0
    for i in order:
        s, t = src_lengths[i] + 1, tgt_lengths[i] + 1  # + eos / bos
        new_src, new_tgt = max(max_src, s), max(max_tgt, t)
        if current and (len(current) + 1) * (new_src + new_tgt) > max_tokens:
            batches.append(current)
            current, new_src, new_tgt = [], s, t
        current.append(i)
        max_src, max_tgt = new_src, new_tgt
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


class BatchPlan:
    """The batches of a tokenised parallel corpus, epoch by epoch."""

    def __init__(self, src_ids: list[list[int]], tgt_ids: list[list[int]], max_tokens: int,
                 seed: int = 1, shuffle: bool = True):
        self.src_ids, self.tgt_ids = src_ids, tgt_ids
        self.src_lengths = [len(s) for s in src_ids]
        self.tgt_lengths = [len(t) for t in tgt_ids]
        self.max_tokens, self.seed, self.shuffle = max_tokens, seed, shuffle

    def epoch(self, epoch: int) -> list[list[int]]:
        return plan_batches(self.src_lengths, self.tgt_lengths, self.max_tokens,
                            self.seed, epoch, self.shuffle)

    def batch(self, indices: list[int]) -> Batch:
        return collate([self.src_ids[i] for i in indices], [self.tgt_ids[i] for i in indices],
                       indices)

    def padding_fraction(self, epoch: int = 0) -> float:
        """Share of padding among all the token slots of an epoch's batches."""
        return padding_fraction(self.epoch(epoch), self.src_lengths, self.tgt_lengths)


def padding_fraction(batches: list[list[int]], src_lengths, tgt_lengths) -> float:
    """Share of padding among the token slots of ``batches`` (eos / bos counted)."""
    real = slots = 0
    for indices in batches:
        s = [src_lengths[i] + 1 for i in indices]
        t = [tgt_lengths[i] + 1 for i in indices]
        real += sum(s) + sum(t)
        slots += len(indices) * (max(s) + max(t))
    return 1.0 - real / max(slots, 1)


class StorePlan:
    """The batches of a token store (nmt/data/store.py), epoch by epoch, shard by shard."""

    def __init__(self, store, max_tokens: int, seed: int = 1):
        self.store, self.max_tokens, self.seed = store, max_tokens, seed
        self.counts: dict[int, int] = {}  # batches of each shard planned so far: an epoch's
        # number of batches does not depend on the epoch (ties only change which pair goes where)

    def shard_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.store.shards)))
        if len(order) > 1:
            random.Random(f"{self.seed}/{epoch}/shards").shuffle(order)
        return order

    def shard_batches(self, epoch: int, number: int) -> list[list[int]]:
        """Shard ``number``'s batches of this epoch, as global pair indices (shard 0 draws as
        ``plan_batches`` of a whole corpus did)."""
        src, tgt = self.store.lengths(number)
        batches = plan_batches(src.tolist(), tgt.tolist(), self.max_tokens, self.seed,
                               epoch if number == 0 else f"{epoch}/{number}")
        self.counts[number] = len(batches)
        start = int(self.store.starts[number])
        return [[start + i for i in batch] for batch in batches]

    def epoch(self, epoch: int, start: int = 0) -> Iterator[list[int]]:
        """The epoch's batches from the ``start``-th on (a resumed run skips whole shards
        whose number of batches it knows)."""
        for number in self.shard_order(epoch):
            if start >= self.counts.get(number, start + 1):
                start -= self.counts[number]
                continue
            batches = self.shard_batches(epoch, number)
            yield from batches[start:]
            start = max(0, start - len(batches))

    def batches_per_epoch(self) -> int:
        """Exact once every shard has been planned; until then estimated from those that were."""
        if not self.counts:
            self.shard_batches(0, 0)
        if len(self.counts) == len(self.store.shards):
            return sum(self.counts.values())
        planned = sum(self.store.shards[n]["pairs"] for n in self.counts)
        return round(sum(self.counts.values()) * len(self.store) / max(planned, 1))

    def batch(self, indices: list[int], rank: int = 0, world_size: int = 1) -> tuple[Batch, int]:
        """Rows ``rank::world_size`` of the batch (a data-parallel process reads only its own)
        and the target tokens of the whole batch (the loss is normalised by them)."""
        mine = indices[rank::world_size]
        src, tgt = self.store.pairs(mine)
        total = sum(self.store.target_length(i) + 1 for i in indices) if world_size > 1 \
            else sum(len(t) + 1 for t in tgt)
        return collate(src, tgt, mine), total

    def padding_fraction(self) -> float:
        """Share of padding among the token slots of the first shard's batches."""
        src, tgt = self.store.lengths(0)
        return padding_fraction(self.shard_batches(0, 0), src.tolist(), tgt.tolist())


def decode_batches(ids: list[list[int]], beam_size: int, max_tokens: int) -> list[list[int]]:
    """Indices of ``ids`` grouped longest first into batches within ``max_tokens``: little
    padding, full matrix products."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    batches, current, width = [], [], 0
    for i in order:
        # Decoding work grows with the beams and the target, about as long as the source.
        cost = (len(ids[i]) + 1) * 2 * beam_size
        if current and (len(current) + 1) * max(width, cost) > max_tokens:
            batches.append(current)
            current, width = [], 0
        current.append(i)
        width = max(width, cost)
    if current:
        batches.append(current)
    return batches
