"""The interface every translation model implements, so one search drives them all.

    forward(src, src_mask, tgt_in) -> logits            teacher-forced training
    encode(src, src_mask) -> memory                     the source, read once
    decode_step(tokens, memory, state) -> (log_probs, state)
                                                        one target token per hypothesis

``memory`` has a row per sentence; the hypotheses of a step are k rows per sentence, grouped
(rows i*k .. i*k+k-1 belong to sentence i), so a model reads each sentence's memory once for
all its beams. ``memory`` and ``state`` both have ``select(indices)``: row i of the result is row
indices[i] of the input. Beam search reorders hypotheses through ``state.select`` and drops
finished sentences through ``memory.select``; it never needs to know which model it drives.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn


class Selectable(Protocol):
    def select(self, indices: torch.Tensor) -> Selectable: ...


class Seq2Seq(nn.Module):
    """Base class of the encoder-decoder models (Transformer, RNN)."""

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor,
                need_attention: bool = False, logits_mask: torch.Tensor | None = None):
        """Teacher-forced logits (B, T, V); only at the True positions of ``logits_mask`` (N, V)
        when given (training skips the vocabulary projection of padding)."""
        raise NotImplementedError

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> Selectable:
        raise NotImplementedError

    def decode_step(self, tokens: torch.Tensor, memory: Selectable, state: Selectable | None,
                    need_attention: bool = False, project=None) -> tuple[torch.Tensor, Selectable]:
        """tokens (k N,) the last token of each hypothesis, k per sentence of ``memory`` ->
        log-probabilities (k N, V), new state.

        With ``need_attention`` the new state carries ``attention`` (N, S): where this step looked.
        ``project`` replaces the output projection (``output_rows``: a part of the vocabulary).
        """
        raise NotImplementedError

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder outputs (.., d) -> logits over the vocabulary (.., V)."""
        raise NotImplementedError

    def output_rows(self, ids: torch.Tensor):
        """The output projection restricted to the vocabulary rows ``ids``: (.., d) -> (.., len(ids)),
        each logit computed exactly as the full projection computes it."""
        if self.output is None:  # tied to the embedding
            weight = self.embed.weight.detach()[ids]
            return lambda x: F.linear(x, weight)
        if hasattr(self.output, "rows"):  # an Int8Linear (nmt/decode/quantize.py)
            return self.output.rows(ids)
        weight = self.output.weight.detach()[ids]
        bias = None if self.output.bias is None else self.output.bias.detach()[ids]
        return lambda x: F.linear(x, weight, bias)

    def untie_output(self) -> None:
        """Give the output projection its own nn.Linear, a copy of the tied embedding.

        For inference transforms that act on nn.Linear modules (int8 quantization); training
        keeps the tie. Models hold the embedding in ``embed`` and the projection in ``output``
        (None while tied).
        """
        if self.output is None:
            vocab_size, dim = self.embed.weight.shape
            self.output = nn.Linear(dim, vocab_size, bias=False)
            self.output.weight = nn.Parameter(self.embed.weight.detach().clone())

    def fuse_projections(self) -> None:
        """For decoding copies: merge products that always run together into one (the
        Transformer's attention projections); nothing to merge by default."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
