"""The lecture's ablations as model switches: attention without 1/sqrt(d_k), an RNN encoder
that reads one way, an RNN decoder without attention; checked like every config value and
saved with the model."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from nmt.core.config import ConfigError, ModelConfig, load_config
from nmt.data.tokenizer import BOS_ID, PAD_ID
from nmt.decode.quantize import quantize
from nmt.decode.search import beam_search
from nmt.models import build_model
from nmt.models.attention import MultiHeadAttention

VOCAB = 40
TRANSFORMER = ModelConfig(d_model=64, n_heads=4, n_encoder_layers=1, n_decoder_layers=1, d_ff=64)
RNN = ModelConfig(arch="rnn", embed_dim=16, hidden_size=32)


def batch():
    torch.manual_seed(0)
    src = torch.randint(4, VOCAB, (3, 7))
    src[1, 5:] = PAD_ID
    return src, src != PAD_ID


@pytest.mark.parametrize("fused", [True, False])
def test_unscaled_attention_is_softmax_of_the_raw_dot_products(fused):
    torch.manual_seed(0)
    attention = MultiHeadAttention(64, 4, scaled=False).eval()
    attention.use_fused = fused
    x = torch.randn(2, 5, 64)
    with torch.no_grad():
        out, _ = attention(x, x)
        q, k, v = attention.project_qkv(x)
        expected = (q @ k.transpose(-2, -1)).softmax(-1) @ v  # no / sqrt(d_k)
        expected = attention.w_o(expected.transpose(1, 2).reshape(2, 5, 64))
        scaled = (q @ k.transpose(-2, -1) / math.sqrt(16)).softmax(-1) @ v
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(expected, attention.w_o(scaled.transpose(1, 2).reshape(2, 5, 64)),
                              atol=1e-3)


def test_an_unscaled_transformer_decodes_in_pytorch_not_in_the_c_step():
    unscaled = dataclasses.replace(TRANSFORMER, attention_scale="none")
    model = quantize(build_model(unscaled, VOCAB), "int8")
    assert model.native_step is None
    src, mask = batch()
    assert len(beam_search(model, src, mask, beam_size=2)) == 3


def test_a_one_way_encoder_reads_left_to_right_only():
    src, mask = batch()
    later = src.clone()
    later[0, 6] = 4 if src[0, 6] != 4 else 5  # the last word changes
    for bidirectional in (True, False):
        torch.manual_seed(0)
        model = build_model(dataclasses.replace(RNN, rnn_bidirectional=bidirectional), VOCAB).eval()
        first = model.encode(src, mask).annotations[0, 0]
        changed = model.encode(later, mask).annotations[0, 0]
        assert torch.equal(first, changed) == (not bidirectional)


def test_a_decoder_without_attention_reads_only_the_last_state():
    model = build_model(dataclasses.replace(RNN, rnn_attention=False), VOCAB).eval()
    assert model.attention is None
    src, mask = batch()
    tgt = torch.full((3, 4), BOS_ID)
    with torch.no_grad():
        logits, alphas = model(src, mask, tgt, need_attention=True)
    assert logits.shape == (3, 4, VOCAB) and not alphas.any()
    assert len(beam_search(model, src, mask, beam_size=3)) == 3


def test_the_switches_are_checked_and_saved_with_the_model():
    with pytest.raises(ConfigError, match="model.attention_scale = 'half'"):
        load_config(overrides=["model.attention_scale=half"])
    config = load_config(overrides=["model.arch=rnn", "model.rnn_bidirectional=false",
                                    "model.rnn_attention=false"])
    assert '"rnn_bidirectional": false' in config.to_json()
    assert '"attention_scale": "sqrt_dk"' in config.to_json()  # the default: the paper's


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("heads", [1, 4])
def test_heads_are_the_single_head_formula_on_slices_then_concatenated(fused, heads):
    """MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = softmax(Q_i K_i^T / sqrt(d_k)) V_i,
    written here from the weights alone; one head is the plain formula with d_k = d_model."""
    torch.manual_seed(1)
    attention = MultiHeadAttention(64, heads).eval()
    attention.use_fused = fused
    x, memory = torch.randn(2, 5, 64), torch.randn(2, 7, 64)
    d_k = 64 // heads
    with torch.no_grad():
        out, _ = attention(x, memory)
        q, k, v = attention.w_q(x), attention.w_k(memory), attention.w_v(memory)
        concat = torch.cat([(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(d_k)).softmax(-1)
                            @ v[..., s] for s in (slice(i * d_k, (i + 1) * d_k)
                                                  for i in range(heads))], dim=-1)
        expected = attention.w_o(concat)
    assert torch.allclose(out, expected, atol=1e-5)
