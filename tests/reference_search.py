"""The beam and greedy search of nmt before they were vectorised (a Python loop over finished
hypotheses and live sentences each step), kept as the reference the vectorised search must equal.
Unchanged but for the hang guard marked below."""

from __future__ import annotations

import torch

from nmt.data.tokenizer import BOS_ID, EOS_ID
from nmt.decode.search import NEG_INF, Hypothesis, _restrict, length_penalty, max_lengths


@torch.inference_mode()
def reference_greedy(model, src: torch.Tensor, src_mask: torch.Tensor, max_len_ratio: float = 1.5,
                  max_len_offset: int = 10) -> list[list[Hypothesis]]:
    """The most probable next token, step by step; one hypothesis per sentence."""
    batch, device = src.size(0), src.device
    memory = model.encode(src, src_mask)
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)
    alive = torch.arange(batch, device=device)  # sentence index of each row still decoding
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    output: list[list[int]] = [[] for _ in range(batch)]
    scores = torch.zeros(batch, device=device)
    results: list[list[Hypothesis]] = [[] for _ in range(batch)]
    state, step = None, 0
    while alive.numel():
        log_probs, state = model.decode_step(tokens, memory, state)
        log_probs = _restrict(log_probs, limit[alive] <= step + 1)
        best, tokens = log_probs.max(dim=-1)
        scores[alive] += best
        finished = tokens == EOS_ID
        # One conversion to Python per step, not one tensor access per sentence.
        for sentence, token, ended in zip(alive.tolist(), tokens.tolist(), finished.tolist()):
            if ended:
                results[sentence] = [Hypothesis(output[sentence], float(scores[sentence]))]
            else:
                output[sentence].append(token)
        step += 1
        if finished.any():
            keep = (~finished).nonzero().squeeze(1)
            alive, tokens = alive[keep], tokens[keep]
            if alive.numel():
                memory, state = memory.select(keep), state.select(keep)
    return results


@torch.inference_mode()
def reference_beam(model, src: torch.Tensor, src_mask: torch.Tensor, beam_size: int = 4,
                n_best: int = 1, alpha: float = 0.6, max_len_ratio: float = 1.5,
                max_len_offset: int = 10) -> list[list[Hypothesis]]:
    """The ``n_best`` highest-scoring translations of each sentence, best first."""
    if beam_size == 1 and n_best == 1:
        return reference_greedy(model, src, src_mask, max_len_ratio, max_len_offset)
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best ({n_best}) must be between 1 and beam_size ({beam_size})")
    batch, k, device = src.size(0), beam_size, src.device
    memory = model.encode(src, src_mask).select(
        torch.arange(batch, device=device).repeat_interleave(k))
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)

    alive = torch.arange(batch, device=device)  # sentences still searching; rows: alive x k beams
    tokens = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    history = torch.empty(batch, k, 0, dtype=torch.long, device=device)  # each beam's tokens
    # Only the first beam starts alive, so the first step does not pick k copies of one token.
    scores = torch.full((batch, k), NEG_INF, device=device)
    scores[:, 0] = 0.0
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    state, step = None, 0
    while alive.numel():
        n = alive.numel()
        log_probs, state = model.decode_step(tokens, memory, state)
        vocab = log_probs.size(-1)
        must_end = (limit[alive] <= step + 1).repeat_interleave(k)
        log_probs = _restrict(log_probs, must_end)
        candidates = (scores[:, :, None] + log_probs.view(n, k, vocab)).view(n, k * vocab)
        top_scores, top_ids = candidates.topk(2 * k, dim=1)  # (n, 2k)
        top_beams, top_tokens = top_ids // vocab, top_ids % vocab
        is_eos = (top_tokens == EOS_ID) & (top_scores > NEG_INF)

        # Candidates ending in eos among the top k are finished hypotheses.
        lp = length_penalty(step + 1, alpha)
        for row, rank in is_eos[:, :k].nonzero().tolist():
            sentence = int(alive[row])
            beam = int(top_beams[row, rank])
            finished[sentence].append(
                Hypothesis(history[row, beam].tolist(), float(top_scores[row, rank]) / lp))
            if len(finished[sentence]) > k:
                finished[sentence] = sorted(finished[sentence], key=lambda h: -h.score)[:k]

        # The best k candidates that do not end carry on (there are always k: at most k end).
        order = (is_eos.long() * (2 * k) + torch.arange(2 * k, device=device)
                 ).argsort(dim=1)[:, :k]
        scores = top_scores.gather(1, order)
        beams = top_beams.gather(1, order)
        tokens = top_tokens.gather(1, order)
        history = torch.cat([history.gather(1, beams[:, :, None].expand(-1, -1, history.size(2))),
                             tokens[:, :, None]], dim=2)
        step += 1

        best_next = (scores.max(dim=1).values / length_penalty(step + 1, alpha)).tolist()
        # hang guard: a sentence with no live beam left (only possible at tiny vocabularies)
        done = torch.tensor([best == NEG_INF
                             or len(finished[s]) >= k and best <= min(h.score for h in finished[s])
                             for s, best in zip(alive.tolist(), best_next)], dtype=torch.bool,
                            device=device)
        keep = (~done).nonzero().squeeze(1)
        rows = (keep[:, None] * k + beams[keep]).reshape(-1)  # source row of each kept beam
        if done.any():
            alive, scores, tokens, history = alive[keep], scores[keep], tokens[keep], history[keep]
            if not alive.numel():
                break
            memory = memory.select(
                (keep[:, None] * k + torch.arange(k, device=device)).reshape(-1))
        state = state.select(rows)
        tokens = tokens.reshape(-1)
    return [sorted(hyps, key=lambda h: -h.score)[:n_best] for hyps in finished]


