"""int8 weights for CPU decoding: the default precision of translate, serve, evaluate and release.

Decoding reads every weight matrix once per step, and at these sizes a step is bound by memory
traffic and small-matrix overheads, not arithmetic: the tied 8000 x 256 output projection alone is
8 MB in fp32 and misses the cache every step. ``Int8Linear`` stores each weight matrix as int8
with one scale per output row, quantizes the input with one scale per row, multiplies in int8
with exact int32 sums and rescales:

    y_ij = (sum_k q(x)_ik q(W)_jk) * s(x)_i * s(W)_j + b_j,   q(v) = round(v / s),  s = max|v| / 127

Because every input row has its own scale and integer sums are exact, what else is in a batch
does not enter a sentence's products. (PyTorch's dynamic quantization shares one activation scale
across the whole batch: with it 37 of 300 test sentences changed with their batch-mates.) The
padding a longer batch-mate brings still moves the fp32 parts (attention over more masked keys:
5e-7 in the encoder output), and rounding to int8 can turn that into a different choice at a near
tie: 1 of the first 400 test sentences translated alone differs from the same sentence in its
batch (fp32: 0 of 400). Measured with ``python bench/decode.py``: see the README for the figures; BLEU
stays within 0.1 of fp32. ``--quantize none`` keeps fp32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nmt.config import DEFAULT_PRECISION, PRECISIONS
from nmt.models.attention import MultiHeadAttention

if TYPE_CHECKING:
    from nmt.models.base import Seq2Seq


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, K) -> int8 q (N, K) and scales s (N, 1) with x ~= q * s, one scale per row."""
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min_(1e-12) / 127
    return (x / scale).round_().to(torch.int8), scale


class Int8Linear(nn.Module):
    """An nn.Linear with int8 weights and per-row int8 inputs (see the module docstring)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight, scale = quantize_rows(linear.weight.detach().float())
        self.register_buffer("weight", weight)  # (out, in) int8
        self.register_buffer("scale", scale.squeeze(1))  # (out,)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        q, row_scale = quantize_rows(x if x.dtype == torch.float32 else x.float())
        y = torch._int_mm(q, self.weight.t()).float()  # (N, out): int32 sums, exact
        # In place, one factor at a time: torch.addcmul over (256, 8000) took 8 ms here, these
        # three passes 0.3 ms (bench: the output projection of a beam-4 step, 256 rows).
        y.mul_(row_scale).mul_(self.scale)
        if self.bias is not None:
            y.add_(self.bias)
        return y.view(*shape[:-1], self.out_features)

    def rows(self, ids: torch.Tensor) -> Int8Linear:
        """This layer restricted to the output rows ``ids``: the same int8 rows and scales, so
        each remaining output is bit for bit what the whole layer computes."""
        part = Int8Linear.__new__(Int8Linear)
        nn.Module.__init__(part)
        part.register_buffer("weight", self.weight[ids].contiguous())
        part.register_buffer("scale", self.scale[ids].contiguous())
        part.register_buffer("bias", None if self.bias is None else self.bias[ids].contiguous())
        part.in_features, part.out_features = self.in_features, len(ids)
        return part

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize(model: Seq2Seq, precision: str = DEFAULT_PRECISION) -> Seq2Seq:
    """``model`` ready for decoding in ``precision``: "int8" replaces every nn.Linear (the
    output projection included) by an ``Int8Linear``; "none" keeps fp32. Puts it in eval mode."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown quantization {precision!r}; use one of {', '.join(PRECISIONS)}")
    model.eval()
    if precision == "none":
        return model
    model.untie_output()  # so the output projection is an nn.Linear that can be quantized too
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.fuse_projections()  # exact under per-row int8: same rows, same scales
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                setattr(parent, name, Int8Linear(child))
    return model
