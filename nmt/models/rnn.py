"""The RNN baseline: "Neural Machine Translation by Jointly Learning to Align and Translate"
(Bahdanau, Cho and Bengio, 2015), with GRUs.

Encoder: a bidirectional GRU; the forward and backward states of each position are concatenated,
    h_j = [h_j(fwd); h_j(bwd)], so every annotation h_j has seen the whole sentence.
Attention: additive,
    e_tj = v_a^T tanh(W_a s_{t-1} + U_a h_j),   alpha_tj = softmax_j(e_tj),   c_t = sum_j alpha_tj h_j
Decoder: a GRU fed the previous word and the context,
    s_t = GRU([E y_{t-1}; c_t], s_{t-1}),       s_0 = tanh(W_s [h_S(fwd); h_1(bwd)])
Output: a readout of state, context and previous word, projected on the (tied) embeddings,
    t_t = tanh(W_o [s_t; c_t; E y_{t-1}]),      p(y_t | y_<t, x) = softmax(E t_t)

The decoder is one ``step`` function used by training (teacher forcing), by ``decode_step`` and by
``decode_prefix`` alike, so cached and uncached decoding cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nmt.data.tokenizer import BOS_ID, PAD_ID
from nmt.models.base import Seq2Seq
from nmt.models.dropout import Dropout


@dataclass
class RNNMemory:
    annotations: torch.Tensor  # h_j, (N, S, 2 * H_enc)
    keys: torch.Tensor | None  # U_a h_j, computed once, (N, S, A); None without attention
    src_mask: torch.Tensor  # (N, S)
    initial: torch.Tensor  # s_0, (N, H)
    summary: torch.Tensor  # the encoder's last states, (N, H): the context without attention

    def select(self, indices: torch.Tensor) -> RNNMemory:
        return RNNMemory(self.annotations.index_select(0, indices),
                         None if self.keys is None else self.keys.index_select(0, indices),
                         self.src_mask.index_select(0, indices),
                         self.initial.index_select(0, indices),
                         self.summary.index_select(0, indices))


@dataclass
class RNNState:
    hidden: torch.Tensor  # s_{t-1}, (N, H)
    attention: torch.Tensor | None = None  # alpha of the last step, (N, S)

    def select(self, indices: torch.Tensor) -> RNNState:
        return RNNState(self.hidden.index_select(0, indices),
                        None if self.attention is None else self.attention.index_select(0, indices))


class AdditiveAttention(nn.Module):
    """e_tj = v_a^T tanh(W_a s_{t-1} + U_a h_j)"""

    # A probe for the studies, None otherwise: ``weights_hook(alpha)`` sees the weights
    # (N, k, S) and may return others to attend with (as MultiHeadAttention's).
    weights_hook = None

    def __init__(self, query_size: int, key_size: int, attention_size: int):
        super().__init__()
        self.w_a = nn.Linear(query_size, attention_size, bias=False)
        self.u_a = nn.Linear(key_size, attention_size)
        self.v_a = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query, keys, values, mask):
        """query (k N, H): k queries for each of N sentences, grouped by sentence; keys (N, S, A),
        values (N, S, D), mask (N, S) -> context (k N, D), alpha (k N, S). The keys and values
        are read once per sentence, whatever k (beam search needs no copy per beam)."""
        n, s = mask.shape
        k = query.size(0) // n
        energy = torch.tanh(self.w_a(query).view(n, k, 1, -1) + keys[:, None])  # (N, k, S, A)
        scores = self.v_a(energy).squeeze(-1)  # e_tj, (N, k, S)
        alpha = scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=-1)
        if self.weights_hook is not None:
            replaced = self.weights_hook(alpha)
            alpha = alpha if replaced is None else replaced.to(alpha.dtype)
        context = torch.bmm(alpha.to(values.dtype), values)  # (N, k, D)
        return context.reshape(n * k, -1), alpha.reshape(n * k, s)


class RNNSeq2Seq(Seq2Seq):
    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_size: int = 512,
                 num_layers: int = 1, dropout: float = 0.3, tie_embeddings: bool = True,
                 bidirectional: bool = True, attention: bool = True):
        """``bidirectional=False``: the encoder reads left to right only, h_j = h_j(fwd), and
        s_0 = tanh(W_s h_S); ``attention=False``: no attention, the context of every step is
        the encoder's last state, c_t = h_S (Cho et al. 2014): the lecture's starting points."""
        super().__init__()
        assert hidden_size % 2 == 0 or not bidirectional, \
            "hidden_size must be even (two encoder directions)"
        self.bidirectional = bidirectional
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, mean=0.0, std=embed_dim ** -0.5)
        nn.init.zeros_(self.embed.weight[PAD_ID])
        self.dropout = Dropout(dropout)
        annotation = hidden_size  # forward and backward halves
        self.encoder = nn.GRU(embed_dim, hidden_size // 2 if bidirectional else hidden_size,
                              num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                              dropout=dropout if num_layers > 1 else 0.0)
        self.init_state = nn.Linear(annotation, hidden_size)  # W_s
        self.attention = AdditiveAttention(hidden_size, annotation, hidden_size) if attention \
            else None
        self.decoder = nn.GRUCell(embed_dim + annotation, hidden_size)
        self.readout = nn.Linear(hidden_size + annotation + embed_dim, embed_dim)  # W_o
        self.output = None if tie_embeddings else nn.Linear(embed_dim, vocab_size, bias=False)

    def project(self, t: torch.Tensor) -> torch.Tensor:
        return F.linear(t, self.embed.weight) if self.output is None else self.output(t)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> RNNMemory:
        lengths = src_mask.sum(dim=1).cpu()
        x = self.dropout(self.embed(src))  # (B, S, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                    enforce_sorted=False)
        out, last = self.encoder(packed)
        annotations, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                          total_length=src.size(1))
        # last: (layers * 2, B, H/2); the top layer's forward end and backward start.
        summary = torch.cat([last[-2], last[-1]], dim=-1) if self.bidirectional else last[-1]
        initial = torch.tanh(self.init_state(summary))  # s_0
        annotations = self.dropout(annotations)
        # U_a h_j, once per sentence
        keys = self.attention.u_a(annotations) if self.attention is not None else None
        return RNNMemory(annotations, keys, src_mask, initial, summary)

    def step(self, prev_tokens: torch.Tensor, memory: RNNMemory, hidden: torch.Tensor):
        """One target position: y_{t-1} (N,), s_{t-1} (N, H) -> readout t_t (N, E), s_t, alpha_t."""
        embedded = self.dropout(self.embed(prev_tokens))  # E y_{t-1}
        if self.attention is not None:
            context, alpha = self.attention(hidden, memory.keys, memory.annotations,
                                            memory.src_mask)
        else:  # c_t = h_S for every t; nothing is attended to
            k = hidden.size(0) // memory.summary.size(0)
            context = memory.summary.repeat_interleave(k, 0)
            alpha = torch.zeros(hidden.size(0), memory.src_mask.size(1), device=hidden.device)
        hidden = self.decoder(torch.cat([embedded, context], dim=-1), hidden)  # s_t
        readout = torch.tanh(self.readout(torch.cat([hidden, context, embedded], dim=-1)))
        return self.dropout(readout), hidden, alpha

    def forward(self, src, src_mask, tgt_in, need_attention=False, logits_mask=None):
        memory = self.encode(src, src_mask)
        hidden, readouts, alphas = memory.initial, [], []
        for t in range(tgt_in.size(1)):
            readout, hidden, alpha = self.step(tgt_in[:, t], memory, hidden)
            readouts.append(readout)
            alphas.append(alpha)
        readout = torch.stack(readouts, dim=1)  # (B, T, E)
        if logits_mask is not None:
            readout = readout[logits_mask]
        logits = self.project(readout)
        return (logits, torch.stack(alphas, dim=1)) if need_attention else logits

    def decode_step(self, tokens, memory: RNNMemory, state: RNNState | None,
                    need_attention: bool = False, project=None):
        if state is None:  # k hypotheses per sentence start from its s_0
            hidden = memory.initial.repeat_interleave(tokens.size(0) // memory.initial.size(0), 0)
        else:
            hidden = state.hidden
        readout, hidden, alpha = self.step(tokens, memory, hidden)
        log_probs = (project or self.project)(readout).float().log_softmax(dim=-1)
        return log_probs, RNNState(hidden, alpha if need_attention else None)

    def decode_prefix(self, prefix: torch.Tensor, memory: RNNMemory,
                      project=None) -> torch.Tensor:
        """Next-token log-probabilities after ``prefix`` (N, t), recomputed from s_0."""
        assert bool((prefix[:, 0] == BOS_ID).all()), "a prefix starts with bos"
        hidden, readout = memory.initial, None
        for t in range(prefix.size(1)):
            readout, hidden, _ = self.step(prefix[:, t], memory, hidden)
        return (project or self.project)(readout).float().log_softmax(dim=-1)
