"""Why sqrt(d_k), measured: the variance of q . k grows with d_k and the unscaled softmax
saturates, the scaled one does not; the trained model's own scores are read per layer; the study
page keeps each experiment's section (nmt/study/)."""

from __future__ import annotations

import dataclasses

import torch

from nmt.core.config import ModelConfig
from nmt.data.tokenizer import PAD_ID
from nmt.models import build_model
from nmt.study.page import write_section
from nmt.study.sqrt_dk import model_scores, random_vectors, softmax_stats


def test_unscaled_scores_grow_with_d_k_and_saturate_the_softmax():
    rows = random_vectors((16, 64, 256), queries=500)
    for row in rows:
        assert abs(row["variance_raw"] / row["d_k"] - 1) < 0.1
        assert abs(row["variance_scaled"] - 1) < 0.1
    raw = [row["raw"] for row in rows]
    assert raw[0]["max_probability"] < raw[1]["max_probability"] < raw[2]["max_probability"]
    assert raw[0]["jacobian_norm"] > raw[1]["jacobian_norm"] > raw[2]["jacobian_norm"]
    scaled = [row["scaled"]["entropy"] for row in rows]
    assert max(scaled) - min(scaled) < 0.05


def test_a_saturated_softmax_passes_no_gradient():
    peaked = softmax_stats(torch.tensor([[100.0, 0.0, 0.0, 0.0]]))
    flat = softmax_stats(torch.zeros(1, 4))
    assert peaked["max_probability"] == 1.0 and peaked["jacobian_norm"] < 1e-6
    assert flat["max_probability"] == 0.25 and flat["jacobian_norm"] > 0.1


def test_a_models_own_queries_and_keys_are_read_per_encoder_layer():
    config = ModelConfig(d_model=32, n_heads=2, n_encoder_layers=2, n_decoder_layers=1, d_ff=32)
    model = build_model(config, 40).eval()
    src = torch.randint(4, 40, (3, 6))
    src[0, 4:] = PAD_ID
    rows = model_scores(model, src, src != PAD_ID)
    assert [row["layer"] for row in rows] == ["encoder_layers.0.self_attn",
                                              "encoder_layers.1.self_attn"]
    assert all(row["d_k"] == 16 and row["variance_raw"] > row["variance_scaled"] for row in rows)
    unscaled = build_model(dataclasses.replace(config, attention_scale="none"), 40).eval()
    assert len(model_scores(unscaled, src, src != PAD_ID)) == 2


def test_each_experiment_rewrites_only_its_own_section(tmp_path):
    page = tmp_path / "README.md"
    write_section(page, "a", "first\n")
    write_section(page, "b", "other\n")
    write_section(page, "a", "second\n")
    text = page.read_text()
    assert "second" in text and "first" not in text and text.count("<!-- study:a -->") == 1
    assert text.index("study:a") < text.index("study:b")
