"""Greedy and beam search over any ``Seq2Seq`` model, batched over sentences and beams.

The model is driven only through ``encode`` and ``decode_step``. The memory has one row per
sentence and the hypotheses k consecutive rows per sentence (the model reads its memory once per
sentence, not once per beam); hypotheses are reordered through ``state.select`` and finished
sentences dropped through ``memory.select``. Keys/values of the decoder grow step by step inside
the model's state; the encoder's are computed once.

Beam search follows fairseq: each step ranks 2k candidates per sentence, sets aside those that end
in eos among the top k as finished (scored with the GNMT length penalty), and continues with the
best k that do not. A sentence retires once it has k finished hypotheses and its best live beam,
normalised at the next length, no longer beats the k-th of them (Hugging Face's rule: stopping at
the first k finished, as fairseq does, would ignore that the length penalty favours longer ones).

All bookkeeping is tensors: live beams' tokens and each sentence's k best finished hypotheses sit
in preallocated tensors, updated with gathers and one stable sort; Python sees the results once,
at the end. The previous per-hypothesis Python loop (kept in tests/reference_search.py, which the
tests hold this search equal to) cost a quarter of the decoding time of a beam-4 batch of 128
sentences; this costs under a tenth (bench/decode.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # target ids, without bos and eos
    score: float  # sum of log-probabilities (eos included) / length penalty


def length_penalty(length: int | torch.Tensor, alpha: float):
    """GNMT (Wu et al., 2016): lp(Y) = ((5 + |Y|) / 6) ** alpha"""
    return ((5.0 + length) / 6.0) ** alpha


def max_lengths(src_mask: torch.Tensor, ratio: float, offset: int) -> torch.Tensor:
    """The longest target (eos included) each sentence may get: ratio * |x| + offset."""
    return (src_mask.sum(dim=1).float() * ratio).long() + offset


def _restrict(log_probs: torch.Tensor, must_end: torch.Tensor) -> torch.Tensor:
    """Never emit pad or bos; emit only eos in rows that reached their maximum length."""
    log_probs[:, PAD_ID] = NEG_INF
    log_probs[:, BOS_ID] = NEG_INF
    if must_end.any():
        eos = log_probs[must_end, EOS_ID].clone()
        log_probs[must_end] = NEG_INF
        log_probs[must_end, EOS_ID] = eos
    return log_probs


# Greedy search drops finished rows from the batch only once they are this share of it. Each
# drop copies the memory and every layer's cache (11% of a greedy batch of 128 went to these
# copies when rows were dropped at every step where one finished), while a finished row kept a
# little longer costs one row of each step's products. (Beam search reorders the caches at
# every step anyway, so it drops retired sentences at once: keeping them was no faster.)
COMPACT_SHARE = 0.25


@torch.inference_mode()
def greedy_search(model, src: torch.Tensor, src_mask: torch.Tensor, max_len_ratio: float = 1.5,
                  max_len_offset: int = 10) -> list[list[Hypothesis]]:
    """The most probable next token, step by step; one hypothesis per sentence."""
    batch, device = src.size(0), src.device
    memory = model.encode(src, src_mask)
    # Rows that finished write to an extra sentence, ``spent``, until they are dropped.
    spent = batch
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)
    output = torch.full((batch + 1, int(limit.max())), PAD_ID, dtype=torch.long, device=device)
    limit = torch.cat([limit, limit.new_tensor([output.size(1)])])
    lengths = torch.zeros(batch + 1, dtype=torch.long, device=device)
    scores = torch.zeros(batch + 1, device=device)
    alive = torch.arange(batch, device=device)  # sentence index of each row (spent: finished)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    state, step, decoding = None, 0, batch
    while decoding:
        log_probs, state = model.decode_step(tokens, memory, state)
        log_probs = _restrict(log_probs, limit[alive] <= step + 1)
        best, tokens = row_max(log_probs)
        scores.index_add_(0, alive, best)
        output[alive, step] = tokens
        step += 1
        finished = (tokens == EOS_ID) & (alive != spent)
        ended = int(finished.sum())
        if ended:
            lengths[alive[finished]] = step - 1  # eos is not part of the translation
            alive, decoding = alive.masked_fill(finished, spent), decoding - ended
            if decoding and alive.numel() - decoding >= COMPACT_SHARE * alive.numel():
                keep = (alive != spent).nonzero().squeeze(1)
                alive, tokens = alive[keep], tokens[keep]
                memory, state = memory.select(keep), state.select(keep)
    return [[Hypothesis(row[:length], score)] for row, length, score in
            zip(output[:batch].tolist(), lengths[:batch].tolist(), scores[:batch].tolist())]


@dataclass
class Finished:
    """Each sentence's k best finished hypotheses so far, best first (-inf: none yet)."""

    scores: torch.Tensor  # (B, k) normalised by the length penalty
    tokens: torch.Tensor  # (B, k, L) padded with PAD_ID, which no hypothesis holds (_restrict)

    @classmethod
    def empty(cls, batch: int, k: int, max_len: int, device) -> Finished:
        return cls(torch.full((batch, k), NEG_INF, device=device),
                   torch.full((batch, k, max_len), PAD_ID, dtype=torch.long, device=device))

    def add(self, sentences: torch.Tensor, scores: torch.Tensor, tokens: torch.Tensor) -> None:
        """Merge candidates (n, k) of ``sentences`` (-inf where none), tokens (n, k, t), into the
        k best: the stable sort keeps earlier ones first on a tie, as a list append would."""
        k = scores.size(1)
        merged = torch.cat([self.scores[sentences], scores], dim=1)  # (n, 2k)
        order = merged.sort(dim=1, descending=True, stable=True).indices[:, :k]
        new_tokens = torch.full_like(self.tokens[sentences], PAD_ID)
        new_tokens[:, :, :tokens.size(2)] = tokens
        self.scores[sentences] = merged.gather(1, order)
        self.tokens[sentences] = torch.cat([self.tokens[sentences], new_tokens], dim=1).gather(
            1, order[:, :, None].expand(-1, -1, self.tokens.size(2)))

    def best(self, n_best: int) -> list[list[Hypothesis]]:
        lengths = (self.tokens != PAD_ID).sum(dim=2)
        return [[Hypothesis(row[:length], score) for row, length, score in
                 zip(rows[:n_best], lengths[:n_best], scores[:n_best]) if score > NEG_INF]
                for rows, lengths, scores in zip(self.tokens.tolist(), lengths.tolist(),
                                                 self.scores.tolist())]


# Vocabulary rows are read in chunks of this many pieces by ``row_max`` and ``row_topk``.
CHUNK = 64


def _chunked(x: torch.Tensor) -> torch.Tensor:
    """x (R, V) as (R, V // CHUNK, CHUNK), a view of its whole chunks; the rest,
    ``x[:, body.size(1) * CHUNK:]``, is the last, shorter chunk."""
    chunks = x.size(1) // CHUNK
    return x[:, :chunks * CHUNK].view(x.size(0), chunks, CHUNK)


def row_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.max(dim=-1)`` of x (R, V), the same values and indices (the first of equal maxima).

    PyTorch's max with indices walks the row one element at a time; ``amax`` without indices is
    vectorised. So the row's maximum is found among the maxima of its 64-piece chunks, and its
    index inside the first chunk that holds it. Below 16 rows this was measured no faster, hence
    the threshold."""
    rows, width = x.shape
    chunks = width // CHUNK
    if rows < 16 or chunks < 2:
        return x.max(dim=-1)
    body = _chunked(x)
    chunk = body.amax(dim=-1).argmax(dim=-1)  # argmax: the first chunk with the maximum
    values, within = body[torch.arange(rows, device=x.device), chunk].max(dim=-1)
    indices = chunk * CHUNK + within
    if chunks * CHUNK < width:  # the last, shorter chunk: it wins only if strictly greater
        tail_values, tail_within = x[:, chunks * CHUNK:].max(dim=-1)
        later = tail_values > values
        values = torch.where(later, tail_values, values)
        indices = torch.where(later, tail_within + chunks * CHUNK, indices)
    return values, indices


def row_topk(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.topk(k, dim=-1)`` of x (R, V): the same values, best first, with their indices.

    The k best of a row lie in at most k chunks, and each of those chunks' maximum is among the
    k largest chunk maxima (were one not, k other chunks would each hold a greater element). So
    the k chunks with the largest maxima, plus the last, shorter chunk, hold the answer, and the
    full top-k runs over k * 64 + 63 candidates instead of V. Below 64 rows this was measured no
    faster, hence the threshold. Among exactly equal values the order is, as with ``topk``
    itself, not specified."""
    rows, width = x.shape
    chunks = width // CHUNK
    if rows < 64 or chunks <= k:
        return x.topk(k, dim=-1)
    body = _chunked(x)
    chosen = body.amax(dim=-1).topk(k, dim=-1).indices  # (R, k)
    candidates = body[torch.arange(rows, device=x.device)[:, None], chosen].view(rows, k * CHUNK)
    candidates = torch.cat([candidates, x[:, chunks * CHUNK:]], dim=1)
    values, picked = candidates.topk(k, dim=-1)
    in_tail = picked >= k * CHUNK
    from_chunk = chosen.gather(1, (picked // CHUNK).clamp_max_(k - 1)) * CHUNK + picked % CHUNK
    return values, torch.where(in_tail, picked - k * CHUNK + chunks * CHUNK, from_chunk)


def top_candidates(scores: torch.Tensor, log_probs: torch.Tensor, width: int):
    """The ``width`` best one-token extensions of each sentence's k beams: scores (n, width),
    beam and token of each. Ranked in two stages, the best ``width`` tokens of each beam first,
    then the best of those k * width, which is the same set as a top-k over all k * V candidates
    at a fraction of the cost."""
    n, k = scores.shape
    each = min(width, log_probs.size(-1))
    per_beam, tokens = row_topk(log_probs, each)  # (n * k, each)
    candidates = (scores[:, :, None] + per_beam.view(n, k, each)).view(n, k * each)
    top_scores, picked = candidates.topk(width, dim=1)
    return top_scores, picked // each, tokens.view(n, k * each).gather(1, picked)


@torch.inference_mode()
def beam_search(model, src: torch.Tensor, src_mask: torch.Tensor, beam_size: int = 4,
                n_best: int = 1, alpha: float = 0.6, max_len_ratio: float = 1.5,
                max_len_offset: int = 10) -> list[list[Hypothesis]]:
    """The ``n_best`` highest-scoring translations of each sentence, best first."""
    if beam_size == 1 and n_best == 1:
        return greedy_search(model, src, src_mask, max_len_ratio, max_len_offset)
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best ({n_best}) must be between 1 and beam_size ({beam_size})")
    batch, k, device = src.size(0), beam_size, src.device
    memory = model.encode(src, src_mask)
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)
    finished = Finished.empty(batch, k, int(limit.max()), device)
    alive = torch.arange(batch, device=device)  # sentences still searching; rows: alive x k beams
    tokens = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    history = torch.empty(batch, k, int(limit.max()), dtype=torch.long, device=device)
    # Only the first beam starts alive, so the first step does not pick k copies of one token.
    scores = torch.full((batch, k), NEG_INF, device=device)
    scores[:, 0] = 0.0
    ranks = torch.arange(2 * k, device=device)
    state, step = None, 0
    while alive.numel():
        log_probs, state = model.decode_step(tokens, memory, state)
        log_probs = _restrict(log_probs, (limit[alive] <= step + 1).repeat_interleave(k))
        top_scores, top_beams, top_tokens = top_candidates(scores, log_probs, 2 * k)
        is_eos = (top_tokens == EOS_ID) & (top_scores > NEG_INF)

        # Candidates ending in eos among the top k are finished hypotheses.
        if is_eos[:, :k].any():
            ended = torch.where(is_eos[:, :k], top_scores[:, :k] / length_penalty(step + 1, alpha),
                                NEG_INF)
            parents = top_beams[:, :k, None].expand(-1, -1, step)
            finished.add(alive, ended, history[:, :, :step].gather(1, parents))

        # The best k candidates that do not end carry on (there are always k: at most k end).
        order = (is_eos.long() * (2 * k) + ranks).argsort(dim=1)[:, :k]
        scores, beams, tokens = (top_scores.gather(1, order), top_beams.gather(1, order),
                                 top_tokens.gather(1, order))
        history[:, :, :step] = history[:, :, :step].gather(1, beams[:, :, None].expand(-1, -1, step))
        history[:, :, step] = tokens
        step += 1

        # Retire sentences whose k-th finished beats every live beam, or with no live beam left.
        best_next = scores.max(dim=1).values / length_penalty(step + 1, alpha)
        kth = finished.scores[alive, k - 1]
        done = ((kth > NEG_INF) & (best_next <= kth)) | (best_next == NEG_INF)
        parent_rows = beams + torch.arange(beams.size(0), device=device)[:, None] * k
        if done.any():
            keep = (~done).nonzero().squeeze(1)
            alive, scores, tokens, history = alive[keep], scores[keep], tokens[keep], history[keep]
            if not alive.numel():
                break
            memory, parent_rows = memory.select(keep), parent_rows[keep]
        state = state.select(parent_rows.reshape(-1))
        tokens = tokens.reshape(-1)
    return finished.best(n_best)


search = beam_search  # beam size 1 with one hypothesis goes to greedy_search


class UncachedDecoder:
    """Wraps a model so that every step recomputes the decoder over the whole prefix.

    The reference that cached decoding must equal, and the baseline of ``bench/decode.py``.
    """

    @dataclass
    class Prefix:
        tokens: torch.Tensor  # (N, t)

        def select(self, indices):
            return UncachedDecoder.Prefix(self.tokens.index_select(0, indices))

    @dataclass
    class Source:
        memory: object  # the model's memory, one row per sentence
        sentences: int

        def select(self, indices):
            return UncachedDecoder.Source(self.memory.select(indices), indices.numel())

    def __init__(self, model):
        self.model = model

    def encode(self, src, src_mask):
        return UncachedDecoder.Source(self.model.encode(src, src_mask), src.size(0))

    def decode_step(self, tokens, source, state, need_attention=False):
        prefix = tokens[:, None] if state is None else torch.cat([state.tokens, tokens[:, None]], 1)
        beams = tokens.size(0) // source.sentences  # decode_prefix takes a memory row per prefix
        memory = source.memory.select(torch.arange(source.sentences).repeat_interleave(beams))
        return self.model.decode_prefix(prefix, memory), UncachedDecoder.Prefix(prefix)
