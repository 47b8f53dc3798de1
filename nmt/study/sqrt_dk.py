"""Why attention divides by sqrt(d_k): measured on random vectors and on a trained model.

For q and k with independent components of mean 0 and variance 1,

    q . k = sum_{i=1..d_k} q_i k_i   has mean 0 and variance d_k,

so the scores a softmax sees grow with the head size. Unscaled, the softmax saturates: its largest
probability tends to 1, its entropy to 0, and its Jacobian  J = diag(p) - p p^T  (what a gradient
passes through) to 0. Divided by sqrt(d_k), the scores keep variance 1 whatever d_k.

``random_vectors`` measures that over ``D_KS``; ``model_scores`` measures the variance of q . k in
a trained Transformer's own attention (every layer and head, on given sentences), raw and scaled.
"""

from __future__ import annotations

import math

import torch

D_KS = (16, 32, 64, 128, 256, 512)


def softmax_stats(scores: torch.Tensor) -> dict:
    """Mean largest probability, entropy (nats) and Jacobian Frobenius norm of softmax over the
    last dimension of ``scores`` (rows, keys)."""
    p = scores.softmax(dim=-1)
    entropy = -(p * p.clamp_min(1e-30).log()).sum(-1)
    # ||diag(p) - p p^T||_F^2 = sum p_i^2 - 2 sum p_i^3 + (sum p_i^2)^2
    square = (p ** 2).sum(-1)
    jacobian = (square - 2 * (p ** 3).sum(-1) + square ** 2).clamp_min(0).sqrt()
    return {"max_probability": round(p.max(-1).values.mean().item(), 4),
            "entropy": round(entropy.mean().item(), 4),
            "jacobian_norm": round(jacobian.mean().item(), 5)}


def random_vectors(d_ks=D_KS, queries: int = 2000, keys: int = 32, seed: int = 0) -> list[dict]:
    """Per d_k: the variance of q . k and the softmax over ``keys`` keys, raw and scaled."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for d_k in d_ks:
        q = torch.randn(queries, 1, d_k, generator=generator)
        k = torch.randn(queries, keys, d_k, generator=generator)
        raw = (q * k).sum(-1)  # (queries, keys)
        scaled = raw / math.sqrt(d_k)
        rows.append({"d_k": d_k, "variance_raw": round(raw.var().item(), 2),
                     "variance_scaled": round(scaled.var().item(), 3),
                     "raw": softmax_stats(raw), "scaled": softmax_stats(scaled)})
    return rows


def model_scores(model, src: torch.Tensor, src_mask: torch.Tensor) -> list[dict]:
    """The variance of q . k in every encoder self-attention layer of a Transformer (its own
    queries and keys on ``src``), raw and scaled, with the softmax's statistics."""
    from nmt.models.attention import MultiHeadAttention

    captured: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, MultiHeadAttention) and name.startswith("encoder_layers"):
            def capture(mod, args, kwargs, result, name=name):
                q, k, _ = mod.project_qkv(args[0])
                captured.append((name, q, k))
            hooks.append(module.register_forward_hook(capture, with_kwargs=True))
    try:
        with torch.inference_mode():
            model.encode(src, src_mask)
    finally:
        for hook in hooks:
            hook.remove()
    keep = src_mask[:, None, None, :]  # (B, 1, 1, S)
    rows = []
    for name, q, k in captured:
        raw = q @ k.transpose(-2, -1)  # (B, h, S, S)
        valid = keep & src_mask[:, None, :, None]
        d_k = q.size(-1)
        values = raw[valid.expand_as(raw)]
        masked = raw.masked_fill(~keep, float("-inf")).flatten(0, 2)
        masked = masked[src_mask[:, None, :].expand(-1, q.size(1), -1).flatten()]
        rows.append({"layer": name, "d_k": d_k, "variance_raw": round(values.var().item(), 2),
                     "variance_scaled": round((values / math.sqrt(d_k)).var().item(), 3),
                     "raw": softmax_stats(masked), "scaled": softmax_stats(masked / math.sqrt(d_k))})
    return rows
