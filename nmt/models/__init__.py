"""The translation models, and ``build_model(config, vocab_size)`` to make one from a config."""

from __future__ import annotations

from nmt.models.base import Seq2Seq


def build_model(model_config, vocab_size: int) -> Seq2Seq:
    m = model_config
    if m.arch == "transformer":
        from nmt.models.transformer import Transformer

        return Transformer(vocab_size, m.d_model, m.n_heads, m.n_encoder_layers,
                           m.n_decoder_layers, m.d_ff, m.dropout, m.attention_dropout,
                           m.pre_norm, m.tie_embeddings, m.max_positions,
                           scaled=m.attention_scale == "sqrt_dk")
    if m.arch == "rnn":
        from nmt.models.rnn import RNNSeq2Seq

        return RNNSeq2Seq(vocab_size, m.embed_dim, m.hidden_size, m.rnn_layers, m.dropout,
                          m.tie_embeddings, bidirectional=m.rnn_bidirectional,
                          attention=m.rnn_attention)
    raise ValueError(f"unknown model.arch {m.arch!r}")


__all__ = ["Seq2Seq", "build_model"]
