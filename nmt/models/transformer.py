"""The Transformer encoder-decoder of "Attention Is All You Need" (Vaswani et al., 2017).

Read top to bottom it follows the paper: embeddings and positions (3.4, 3.5), the encoder layer
(self-attention, feed-forward), the decoder layer (masked self-attention, attention over the
encoder output, feed-forward), each sublayer inside a residual connection with layer
normalisation (3.1), then the whole model with its output projection tied to the embeddings.
Pre-norm (LayerNorm before each sublayer) is the default: it trains stably without a long warmup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nmt.data.tokenizer import PAD_ID
from nmt.models.attention import MultiHeadAttention
from nmt.models.base import Seq2Seq
from nmt.models.dropout import Dropout


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model))"""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                         * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)
    return pe  # (max_len, d_model)


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2                                           (eq. 2)"""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ReLU in place on x W_1 + b_1, a fresh tensor no other operation needs (its gradient
        # reads the ReLU's output): a decoding step's largest activation, allocated and written
        # once instead of twice.
        return self.w_2(F.relu(self.w_1(x), inplace=True))


class Residual(nn.Module):
    """x + Dropout(Sublayer(LayerNorm(x))) (pre-norm), or LayerNorm(x + Dropout(Sublayer(x)))."""

    def __init__(self, d_model: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.norm, self.dropout, self.pre_norm = nn.LayerNorm(d_model), Dropout(dropout), pre_norm

    def forward(self, x: torch.Tensor, sublayer) -> torch.Tensor:
        if self.pre_norm:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout, attention_dropout, pre_norm, scaled=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout, scaled)
        self.ffn = FeedForward(d_model, d_ff)
        self.sublayers = nn.ModuleList(Residual(d_model, dropout, pre_norm) for _ in range(2))

    def forward(self, x: torch.Tensor, src_attn_mask: torch.Tensor) -> torch.Tensor:
        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, mask=src_attn_mask)[0])
        return self.sublayers[1](x, self.ffn)


def extend_cache(cache: torch.Tensor, new: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """[cache[rows]; new] along time: (N, h, t, d_k) and (N, h, 1, d_k) -> (N, h, t + 1, d_k).

    The reordered rows are written straight into the grown tensor: one copy of the cache per step
    where selecting and then concatenating took two (half the time at 512 rows of 16 steps)."""
    n, heads, t, d_k = cache.size(0) if rows is None else rows.size(0), *cache.shape[1:]
    grown = torch.empty(n, heads, t + 1, d_k, dtype=new.dtype, device=new.device)
    if rows is None:
        grown[:, :, :t] = cache
    else:
        torch.index_select(cache, 0, rows, out=grown[:, :, :t])
    grown[:, :, t:] = new
    return grown


class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout, attention_dropout, pre_norm, scaled=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout, scaled)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, attention_dropout, scaled)
        self.ffn = FeedForward(d_model, d_ff)
        self.sublayers = nn.ModuleList(Residual(d_model, dropout, pre_norm) for _ in range(3))

    def forward(self, x, cross_kv, src_attn_mask, self_kv=None, need_weights=False,
                cache_rows=None):
        """x (B, T, d_model). Without ``self_kv`` the whole target is read at once (causal mask);
        with it, x is one new position of each of k hypotheses per source sentence (B = k x the
        sentences of ``cross_kv``), and its keys/values are appended to the cache, whose rows
        are first reordered by ``cache_rows`` if given.

        Returns x, the updated self-attention cache, cross-attention weights (if asked).
        """
        new_kv = None

        def self_attention(h):
            nonlocal new_kv
            if self_kv is None:
                return self.self_attn(h, h, is_causal=True)[0]
            q, k, v = self.self_attn.project_qkv(h)
            if self_kv[0] is not None:
                k, v = extend_cache(self_kv[0], k, cache_rows), extend_cache(self_kv[1], v, cache_rows)
            new_kv = (k, v)
            return self.self_attn.attend(q, k, v)[0]  # the newest position sees all before it

        weights = None

        def cross_attention(h):
            # The k hypotheses of a sentence read its memory as k queries of one row: the keys
            # and values are read once per sentence, not copied for every beam (1.3x faster
            # beam-4 steps than a memory repeated per beam, bench/decode.py).
            nonlocal weights
            sentences, beams = cross_kv[0].size(0), h.size(0) // cross_kv[0].size(0)
            if beams > 1:
                h = h.reshape(sentences, beams, h.size(-1))
            out, weights = self.cross_attn(h, kv=cross_kv, mask=src_attn_mask,
                                           need_weights=need_weights)
            if beams > 1:
                out = out.reshape(sentences * beams, 1, out.size(-1))
                weights = None if weights is None else weights.reshape(sentences * beams, 1, -1)
            return out

        x = self.sublayers[0](x, self_attention)
        x = self.sublayers[1](x, cross_attention)
        x = self.sublayers[2](x, self.ffn)
        return x, new_kv, weights


@dataclass
class TransformerMemory:
    """The encoded source, with each decoder layer's cross-attention keys/values computed once."""

    src_attn_mask: torch.Tensor  # (N, 1, 1, S)
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (N, h, S, d_k) twice
    encoder_out: torch.Tensor  # (N, S, d_model)

    def select(self, indices: torch.Tensor) -> TransformerMemory:
        return TransformerMemory(self.src_attn_mask.index_select(0, indices),
                                 [(k.index_select(0, indices), v.index_select(0, indices))
                                  for k, v in self.cross_kv],
                                 self.encoder_out.index_select(0, indices))


@dataclass
class TransformerState:
    """The decoder's self-attention keys/values so far, per layer: (N, h, t, d_k) twice.

    ``select`` copies nothing: it records which rows continue (``rows``), and the next step
    reorders the caches while it appends to them (``extend_cache``)."""

    self_kv: list[tuple[torch.Tensor | None, torch.Tensor | None]]
    step: int
    attention: torch.Tensor | None = None  # (N, S) cross-attention of the last step, if asked
    rows: torch.Tensor | None = None  # row i of the next step continues row rows[i] of self_kv

    def select(self, indices: torch.Tensor) -> TransformerState:
        return TransformerState(self.self_kv, self.step,
                                None if self.attention is None
                                else self.attention.index_select(0, indices),
                                indices if self.rows is None else self.rows.index_select(0, indices))


class Transformer(Seq2Seq):
    def __init__(self, vocab_size: int, d_model: int = 256, n_heads: int = 4,
                 n_encoder_layers: int = 3, n_decoder_layers: int = 3, d_ff: int = 1024,
                 dropout: float = 0.1, attention_dropout: float = 0.0, pre_norm: bool = True,
                 tie_embeddings: bool = True, max_positions: int = 1024, scaled: bool = True):
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, mean=0.0, std=d_model ** -0.5)
        nn.init.zeros_(self.embed.weight[PAD_ID])
        self.register_buffer("positions", sinusoidal_positions(max_positions, d_model),
                             persistent=False)
        self.dropout = Dropout(dropout)
        layer_args = (d_model, n_heads, d_ff, dropout, attention_dropout, pre_norm, scaled)
        self.encoder_layers = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(n_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(n_decoder_layers))
        # Pre-norm stacks end with a LayerNorm: the residual stream is never normalised otherwise.
        self.encoder_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.output = None if tie_embeddings else nn.Linear(d_model, vocab_size, bias=False)
        # int8 decoding in one C call, set by nmt/decode/quantize.py where it covers the model
        self.native_step = None

    # 3.4 Embeddings: the same weights for source, target and the pre-softmax projection,
    # multiplied by sqrt(d_model) on the way in. 3.5 Positional encoding: added.
    def embed_tokens(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        t = tokens.size(1)
        x = self.embed(tokens) * math.sqrt(self.d_model) + self.positions[start:start + t]
        return self.dropout(x)  # (B, T, d_model)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder states (.., d_model) -> logits over the vocabulary (.., V)."""
        if self.output is None:
            return F.linear(x, self.embed.weight)
        return self.output(x)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> TransformerMemory:
        """src (B, S) ids, src_mask (B, S) True at real tokens."""
        src_attn_mask = src_mask[:, None, None, :]  # keys that are padding are never attended
        x = self.embed_tokens(src)
        for layer in self.encoder_layers:
            x = layer(x, src_attn_mask)
        x = self.encoder_norm(x)
        return TransformerMemory(src_attn_mask, self.cross_keys_values(x), x)

    def fuse_projections(self) -> None:
        for layer in self.encoder_layers:
            layer.self_attn.fuse_projections(self_attention=True)
        for layer in self.decoder_layers:
            layer.self_attn.fuse_projections(self_attention=True)
            layer.cross_attn.fuse_projections(self_attention=False)

    def cross_keys_values(self, encoder_out: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each decoder layer's cross-attention K and V over the encoder output, heads made
        contiguous once: read through a transposed view, every decoding step copied them again
        inside the attention product (greedy batches of 64 about 6% slower)."""
        return [tuple(part.contiguous() for part in layer.cross_attn.project_kv(encoder_out))
                for layer in self.decoder_layers]

    def decode(self, tgt_in: torch.Tensor, memory: TransformerMemory,
               need_attention: bool = False, logits_mask: torch.Tensor | None = None,
               project=None):
        """The whole target prefix at once (teacher forcing): (B, T) -> logits (B, T, V), or
        over the rows ``project`` keeps (``output_rows``)."""
        x = self.embed_tokens(tgt_in)
        weights = None
        for layer, cross_kv in zip(self.decoder_layers, memory.cross_kv):
            x, _, weights = layer(x, cross_kv, memory.src_attn_mask, need_weights=need_attention)
        x = self.decoder_norm(x)
        if logits_mask is not None:  # training: project only the positions that are scored
            x = x[logits_mask]
        logits = (project or self.project)(x)
        return (logits, weights) if need_attention else logits

    def forward(self, src, src_mask, tgt_in, need_attention=False, logits_mask=None):
        """Teacher-forced logits (B, T, V), or (N, V) for the N True positions of ``logits_mask``
        (B, T); with ``need_attention`` also the last decoder layer's cross-attention averaged
        over heads (B, T, S)."""
        return self.decode(tgt_in, self.encode(src, src_mask), need_attention, logits_mask)

    def decode_step(self, tokens, memory: TransformerMemory, state: TransformerState | None,
                    need_attention: bool = False, project=None):
        """tokens (k N,): the last token of k hypotheses for each of the N sentences of
        ``memory``, grouped by sentence -> log-probabilities (k N, V), new state."""
        native = self.native_step
        if (native is not None and not need_attention and native.covers(project)
                and not isinstance(state, TransformerState)):
            return native(tokens, memory, state, project)
        if state is None:
            state = TransformerState([(None, None)] * len(self.decoder_layers), 0)
        x = self.embed_tokens(tokens[:, None], start=state.step)  # (N, 1, d_model)
        new_kv, weights = [], None
        for layer, cross_kv, self_kv in zip(self.decoder_layers, memory.cross_kv, state.self_kv):
            x, kv, weights = layer(x, cross_kv, memory.src_attn_mask, self_kv=self_kv,
                                   need_weights=need_attention, cache_rows=state.rows)
            new_kv.append(kv)
        log_probs = (project or self.project)(self.decoder_norm(x[:, 0])).float().log_softmax(-1)
        attention = weights[:, 0] if weights is not None else None
        return log_probs, TransformerState(new_kv, state.step + 1, attention)

    def decode_prefix(self, prefix: torch.Tensor, memory: TransformerMemory,
                      project=None) -> torch.Tensor:
        """Log-probabilities (N, V) of the next token after the whole ``prefix`` (N, t), computed
        from scratch with no cache at all (the reference that cached decoding must equal).
        ``memory`` has a row per prefix."""
        fresh = TransformerMemory(memory.src_attn_mask, self.cross_keys_values(memory.encoder_out),
                                  memory.encoder_out)
        return self.decode(prefix, fresh, project=project)[:, -1].float().log_softmax(dim=-1)
