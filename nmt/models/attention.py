"""Multi-head scaled dot-product attention, from "Attention Is All You Need" (Vaswani et al., 2017).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V                                  (eq. 1)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

``scaled_dot_product_attention`` below is the reference, written out. ``MultiHeadAttention`` picks
per call whichever was measured faster on CPUs: for training (gradients on, short sentences) the
explicit version, since the fused CPU kernel's backward pass is slow; for decoding (no gradients,
one query) the fused kernel.
``tests/models/test_attention.py`` checks that both agree.

Masks are boolean and broadcast to (B, h, T_q, T_k): True where a query may attend.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, is_causal: bool = False,
                                 dropout: float = 0.0, scaled: bool = True
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V for q (B, h, T_q, d_k), k and v (B, h, T_k, d_k).

    ``scaled=False``: softmax(Q K^T) V. For q and k of unit-variance components, q . k has
    variance d_k; unscaled, the softmax saturates as d_k grows and its gradient vanishes.
    Returns the output (B, h, T_q, d_k) and the attention weights (B, h, T_q, T_k).
    """
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1)  # (B, h, T_q, T_k)
    if scaled:
        scores = scores / math.sqrt(d_k)
    if is_causal:  # position i sees positions <= i only (the future is not yet written)
        t_q, t_k = scores.shape[-2:]
        causal = torch.ones(t_q, t_k, dtype=torch.bool, device=q.device).tril(t_k - t_q)
        mask = causal if mask is None else mask & causal
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if dropout > 0.0:
        weights = F.dropout(weights, p=dropout)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """h heads, each attending in its own d_k = d_model / h subspace."""

    # "auto": fused kernel without gradients, explicit with them; True / False force one path.
    use_fused: bool | str = "auto"
    # Probes for the studies (nmt/study): None in training and serving. ``head_mask`` (h,)
    # multiplies each head's output before W^O (0: the head removed, Michel et al. 2019);
    # ``weights_hook(weights)`` sees every head's weights (B, h, T_q, T_k) and may return others
    # to attend with instead.
    head_mask: torch.Tensor | None = None
    weights_hook = None

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, scaled: bool = True):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads, self.d_k, self.scaled = n_heads, d_model // n_heads, scaled
        self.w_q = nn.Linear(d_model, d_model)  # W^Q for all heads at once
        self.w_k = nn.Linear(d_model, d_model)  # W^K
        self.w_v = nn.Linear(d_model, d_model)  # W^V
        self.w_o = nn.Linear(d_model, d_model)  # W^O
        self.dropout = dropout
        # Decoding only (``fuse_projections``): [W^Q W^K W^V] or [W^K W^V] as one product.
        self.w_qkv: nn.Linear | None = None
        self.w_kv: nn.Linear | None = None

    def fuse_projections(self, self_attention: bool) -> None:
        """For decoding copies: self-attention's Q, K, V as one (d, 3d) product, or a fixed
        memory's K, V as one (d, 2d) product, instead of three or two small ones (a decoder step
        is dominated by per-call overheads). The separate weights the fused one replaces are
        dropped (a copy is not saved; training and checkpoints keep them)."""

        def stacked(*layers: nn.Linear) -> nn.Linear:
            fused = nn.Linear(layers[0].in_features, sum(layer.out_features for layer in layers))
            fused.weight = nn.Parameter(torch.cat([layer.weight.detach() for layer in layers]))
            fused.bias = nn.Parameter(torch.cat([layer.bias.detach() for layer in layers]))
            return fused

        if self_attention:
            self.w_qkv = stacked(self.w_q, self.w_k, self.w_v)
            self.w_q = None
        else:
            self.w_kv = stacked(self.w_k, self.w_v)
        self.w_k = self.w_v = None

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, h, T, d_k)"""
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_k).transpose(1, 2)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K = x W^K and V = x W^V, split into heads: computed once for a fixed memory."""
        if self.w_kv is not None:
            k, v = self.w_kv(x).chunk(2, dim=-1)
            return self.split_heads(k), self.split_heads(v)
        return self.split_heads(self.w_k(x)), self.split_heads(self.w_v(x))

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Q, K and V of self-attention over x, split into heads."""
        if self.w_qkv is not None:
            return tuple(self.split_heads(part) for part in self.w_qkv(x).chunk(3, dim=-1))
        return (self.split_heads(self.w_q(x)), *self.project_kv(x))

    def forward(self, query: torch.Tensor, key_value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, is_causal: bool = False,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """query (B, T_q, d_model); keys/values from ``key_value`` (B, T_k, d_model) or ready ``kv``.

        Returns (B, T_q, d_model) and, if asked, the weights averaged over heads (B, T_q, T_k).
        """
        if kv is None and key_value is query:  # self-attention
            q, k, v = self.project_qkv(query)
        else:
            q = self.split_heads(self.w_q(query))
            k, v = kv if kv is not None else self.project_kv(key_value)
        return self.attend(q, k, v, mask, is_causal, need_weights)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None = None, is_causal: bool = False,
               need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Concat(head_1, ..., head_h) W^O for projected, split q (B, h, T_q, d_k), k, v."""
        dropout = self.dropout if self.training else 0.0
        # "auto": PyTorch's kernel at inference, except for a decoding step over many rows (one
        # query per hypothesis, or k per sentence in cross-attention), where on this CPU the
        # explicit product is faster from about 32 queries in all: 1.2-1.8x for 48 to 256 single
        # queries of 16 to 30 keys, 2-4x for 8 to 128 sentences of 4 beams (the kernel's blocks
        # are made for long queries); below that the kernel's lower overhead wins.
        fused = self.use_fused if self.use_fused != "auto" else (
            not torch.is_grad_enabled() and not (q.size(2) <= 8 and q.size(0) * q.size(2) >= 32))
        probed = self.head_mask is not None or self.weights_hook is not None
        if fused and not need_weights and not probed:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                                 is_causal=is_causal and mask is None,
                                                 scale=None if self.scaled else 1.0)
            if is_causal and mask is not None:
                raise ValueError("pass a causal mask or is_causal, not both")
            weights = None
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, is_causal, dropout,
                                                        self.scaled)
            if probed:
                out, weights = self.probe(out, weights, v)
            weights = weights.mean(dim=1)
        b, _, t_q, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t_q, self.n_heads * self.d_k)  # Concat(head_1..h)
        return self.w_o(out), weights

    def probe(self, out: torch.Tensor, weights: torch.Tensor, v: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The heads' outputs and weights as the probes leave them."""
        if self.weights_hook is not None:
            replaced = self.weights_hook(weights)
            if replaced is not None:
                weights = replaced.to(v.dtype)
                out = weights @ v
        if self.head_mask is not None:
            out = out * self.head_mask.to(out.dtype)[None, :, None, None]
        return out, weights
