import torch
import torch.nn.functional as F

from nmt.models.attention import MultiHeadAttention, scaled_dot_product_attention


def random_mask(batch, length):
    lengths = torch.randint(1, length + 1, (batch,))
    return torch.arange(length)[None, :] < lengths[:, None]  # (B, T)


def test_reference_equals_torch_sdpa_with_masks():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 7, 16) for _ in range(3))
    mask = random_mask(3, 7)[:, None, None, :]
    ours, weights = scaled_dot_product_attention(q, k, v, mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, 7))
    ours_causal, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    theirs_causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours_causal, theirs_causal, atol=1e-5, rtol=1e-5)


def test_fused_and_explicit_paths_agree():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    x, memory = torch.randn(2, 5, 32), torch.randn(2, 6, 32)
    mask = random_mask(2, 6)[:, None, None, :]
    results = {}
    for fused in (True, False):
        MultiHeadAttention.use_fused = fused
        results[fused] = (mha(x, memory, mask=mask)[0], mha(x, x, is_causal=True)[0])
    MultiHeadAttention.use_fused = "auto"
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_decoding_step_over_many_rows_equals_the_fused_kernel():
    """One query per row over 40 rows takes the explicit product under "auto"."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    x, memory = torch.randn(40, 1, 32), torch.randn(40, 9, 32)
    mask = random_mask(40, 9)[:, None, None, :]
    with torch.inference_mode():
        auto = mha(x, memory, mask=mask)[0]
        MultiHeadAttention.use_fused = True
        fused = mha(x, memory, mask=mask)[0]
    MultiHeadAttention.use_fused = "auto"
    torch.testing.assert_close(auto, fused, atol=1e-5, rtol=1e-5)


def test_future_tokens_cannot_change_earlier_outputs():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    x = torch.randn(1, 6, 32)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 32)
    for fused in (True, False):
        MultiHeadAttention.use_fused = fused
        a, b = mha(x, x, is_causal=True)[0], mha(changed, changed, is_causal=True)[0]
        torch.testing.assert_close(a[:, :4], b[:, :4])
        assert not torch.allclose(a[:, 4:], b[:, 4:])
    MultiHeadAttention.use_fused = "auto"


def test_padding_cannot_change_real_tokens():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    query, memory = torch.randn(1, 3, 32), torch.randn(1, 5, 32)
    mask = torch.tensor([[True, True, True, False, False]])[:, None, None, :]
    noisy = memory.clone()
    noisy[:, 3:] = 100 * torch.randn(1, 2, 32)
    torch.testing.assert_close(mha(query, memory, mask=mask)[0], mha(query, noisy, mask=mask)[0])


def test_fused_projections_equal_separate_ones():
    """A self-attention fused for decoding computes Q, K, V as before, a cross-attention Q and
    its memory's K, V; each drops the separate weights it no longer reads."""
    import copy

    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    x, memory = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    self_attn, cross_attn = copy.deepcopy(mha), copy.deepcopy(mha)
    with torch.no_grad():
        self_attn.fuse_projections(self_attention=True)
        cross_attn.fuse_projections(self_attention=False)
        pairs = [(self_attn.project_qkv(x), mha.project_qkv(x)),
                 (self_attn(x, x)[0], mha(x, x)[0]),
                 (cross_attn.project_kv(memory), mha.project_kv(memory)),
                 (cross_attn(x, memory, mask)[0], mha(x, memory, mask)[0])]
    assert self_attn.w_qkv is not None and self_attn.w_q is None and self_attn.w_kv is None
    assert cross_attn.w_kv is not None and cross_attn.w_q is not None and cross_attn.w_k is None
    for fused, separate in pairs:
        torch.testing.assert_close(fused, separate)
