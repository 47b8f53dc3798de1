"""Alignment methods: subwords merged to words, link rules on hand-made matrices, and the
gradient and leave-one-out methods computing what they say on a tiny model."""

from __future__ import annotations

import torch

from nmt.core.config import ModelConfig
from nmt.decode import alignment as A
from nmt.models import build_model


def pair(src_words, tgt_words):
    """A pair whose source words are 2, 1, 1 subwords long and target words 1, 2."""
    return A.Pair([5, 6, 7, 8, 2], [9, 10, 11, 2], src_words, tgt_words)


def test_subword_scores_merge_to_words_summed_over_source_and_averaged_over_target():
    p = pair([0, 0, 1, 2, -1], [0, 1, 1, -1])
    scores = torch.tensor([[0.1, 0.2, 0.3, 0.3, 0.1],
                           [0.0, 0.0, 0.6, 0.4, 0.0],
                           [0.4, 0.4, 0.0, 0.2, 0.0],
                           [0.2, 0.2, 0.2, 0.2, 0.2]])  # eos row and column dropped
    words = A.to_words(scores, p)
    expected = torch.tensor([[0.3, 0.3, 0.3],
                             [(0.0 + 0.8) / 2, (0.6 + 0.0) / 2, (0.4 + 0.2) / 2]])
    assert torch.allclose(words, expected)


def test_link_rules_on_a_hand_made_matrix():
    words = torch.tensor([[0.9, 0.1, 0.0],   # target 0 -> source 0
                          [0.2, 0.5, 0.3],   # target 1 -> source 1
                          [0.1, 0.6, 0.3]])  # target 2 -> source 1
    assert A.links(words, "target-argmax") == {(0, 0), (1, 1), (1, 2)}
    assert A.links(words, "source-argmax") == {(0, 0), (1, 2), (2, 1)}
    assert A.links(words, "intersect") == {(0, 0), (1, 2)}
    assert A.links(words, "union") == {(0, 0), (1, 1), (1, 2), (2, 1)}
    # grown from the intersection: (1, 1) neighbours (1, 2) and aligns target 1, unaligned so far
    assert A.links(words, "grow-diag") == {(0, 0), (1, 2), (1, 1), (2, 1)}


def tiny_model(arch="transformer"):
    torch.manual_seed(0)
    config = ModelConfig(arch=arch, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=2,
                         d_ff=16, dropout=0.0, embed_dim=16, hidden_size=16)
    return build_model(config, 30).eval()


def test_the_one_pass_gradient_equals_one_backward_pass_per_target_token():
    model = tiny_model()
    p = A.Pair([5, 6, 7, 2], [8, 9, 2], [0, 1, 2, -1], [0, 1, -1])
    batched = A.saliency(model, p)
    src, mask, tgt_in, gold = A.tensors(p)
    for t in range(3):
        embedded = []

        def keep_first(module, args, out):
            if not embedded:
                out.retain_grad()
                embedded.append(out)

        hook = model.embed.register_forward_hook(keep_first)
        log_p = A.target_log_probs(model, src, mask, tgt_in, gold)[0, t]
        log_p.backward()
        hook.remove()
        x = embedded[0]
        assert torch.allclose(batched[t], (x.grad * x).sum(-1).abs()[0], atol=1e-5)


def test_leave_one_out_is_the_drop_of_each_target_log_probability():
    model = tiny_model("rnn")
    p = A.Pair([5, 6, 7, 2], [8, 9, 2], [0, 1, 2, -1], [0, 1, -1])
    scores = A.leave_one_out(model, p)
    src, mask, tgt_in, gold = A.tensors(p)
    with torch.inference_mode():
        base = A.target_log_probs(model, src, mask, tgt_in, gold)[0]
        masked = src.clone()
        masked[0, 1] = 3  # <unk>
        without = A.target_log_probs(model, masked, mask, tgt_in, gold)[0]
    assert torch.allclose(scores[:, 1], base - without, atol=1e-5)
    assert scores.shape == (3, 4) and bool((scores[:, -1] == 0).all())  # eos never removed


def test_every_method_of_both_models_gives_a_target_by_source_matrix():
    p = A.Pair([5, 6, 7, 2], [8, 9, 2], [0, 1, 2, -1], [0, 1, -1])
    for arch in ("transformer", "rnn"):
        model = tiny_model(arch)
        names = A.method_names(model)
        assert "saliency" in names and "leave-one-out" in names
        for name, scores in A.method_scores(model, p, names).items():
            assert scores.shape == (3, 4), name
    assert len(A.method_names(tiny_model())) == 2 * (2 + 2 * 2) + 2  # layers, heads, shifted


def test_shifted_attention_gives_each_token_the_row_that_reads_it():
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert torch.equal(A.shifted(weights), torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.0, 0.0]]))
