"""int8 weights for CPU decoding: the default precision of translate, serve, evaluate and release.

Decoding reads every weight matrix once per step, and at these sizes a step is bound by memory
traffic and small-matrix overheads, not arithmetic: the tied 8000 x 256 output projection alone is
8 MB in fp32 and misses the cache every step. ``Int8Linear`` stores each weight matrix as int8
with one scale per output row, quantizes the input with one scale per row, multiplies in int8
with exact int32 sums and rescales:

    y_ij = (sum_k q(x)_ik q(W)_jk) * s(x)_i * s(W)_j + b_j,   q(v) = round(v / s),  s = max|v| / 127

Because every input row has its own scale and integer sums are exact, what else is in a batch
does not enter a sentence's products (PyTorch's dynamic quantization shares one activation scale
across the batch, so a sentence's translation changed with its batch-mates). The padding a
longer batch-mate brings still moves the fp32 parts (attention over more masked keys), and
rounding to int8 can turn that into a different choice at a near tie, rarely.
``python bench/decode.py`` measures speed and BLEU against fp32 (docs/PERFORMANCE.md);
``--quantize none`` keeps fp32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nmt.core.config import DEFAULT_PRECISION, PRECISIONS
from nmt.decode import kernels
from nmt.decode.native_step import NativeStep

if TYPE_CHECKING:
    from nmt.models.base import Seq2Seq


def quantize_rows(x: torch.Tensor, zero_point: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, K) -> q (N, K) and scales s (N, 1) with x ~= q * s, one scale per row: q int8, or
    uint8 around ``zero_point`` 128. The reference ``nmt.kernels.quantize_rows`` computes in C."""
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min_(1e-12) / 127
    q = (x / scale).round_()
    return (q.add_(128).to(torch.uint8) if zero_point else q.to(torch.int8)), scale


def _prepacked(weight: torch.Tensor):
    """``weight`` (out, in) int8 in oneDNN's blocked layout for ``qlinear_pointwise``, or None
    where this PyTorch build lacks the op (``torch._int_mm`` then gives the same sums)."""
    try:
        return torch.ops.onednn.qlinear_prepack(weight, None)
    except (AttributeError, RuntimeError):
        return None


# Where oneDNN's prepacked product is faster than ``torch._int_mm`` (which reorders the weights
# on every call but starts faster), per layer, 1 and 2 threads of this CPU (int8 forward, us):
# the output projection (4,030 x 256) from one row (93 against 129; 620 against 1,388 at 128
# rows), 768 or 1,024 outputs from about 64 rows (118 against 149), 256 outputs not below 128.
PACKED_ALWAYS_WEIGHTS = 1 << 19  # an output projection: the largest other layer has 2^18
PACKED_FROM_OUTPUTS = 48 * 1024  # rows x outputs


class Int8Linear(nn.Module):
    """An nn.Linear with int8 weights and per-row int8 inputs (see the module docstring).

    Where the C kernels run on a CPU with AVX-512 VNNI, the whole layer is one call
    (``nmt/decode/kernels/int8_product.c``). Otherwise large products go through oneDNN with the
    weights reordered once into its blocked layout, small ones through ``torch._int_mm``
    (``PACKED_FROM_OUTPUTS``). All sum exactly in int32 and rescale in the same order, so a row
    gets the same values whichever one runs, the values of ``torch._int_mm`` alone."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight, scale = quantize_rows(linear.weight.detach().float())
        self._set(weight, scale.squeeze(1),
                  None if linear.bias is None else linear.bias.detach().float())

    def _set(self, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.register_buffer("weight", weight)  # (out, in) int8
        self.register_buffer("scale", scale)  # (out,)
        self.register_buffer("bias", bias)
        # oneDNN's weight scales and zero points: 1 and 0, the sums come out as they are
        self.register_buffer("unit_scales", torch.ones(len(scale)), persistent=False)
        self.register_buffer("zero_points", torch.zeros(len(scale), dtype=torch.long),
                             persistent=False)
        native = kernels.load()
        self.native = None if native is None else kernels.pack_weights(native, weight, scale, bias)
        self._onednn = None  # oneDNN's packed weights, made when its product first runs
        self.out_features, self.in_features = weight.shape
        # oneDNN's product wins from this many rows (the output projection: from one row).
        self.packed_from_rows = 1 if weight.numel() >= PACKED_ALWAYS_WEIGHTS else \
            -(-PACKED_FROM_OUTPUTS // self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if x.dtype != torch.float32:
            x = x.float()
        native = kernels.load() if x.device.type == "cpu" else None
        if native is not None and self.native is not None:
            return kernels.linear(native, x.contiguous(), self.native).view(*shape[:-1],
                                                                             self.out_features)
        packed = self.packed is not None and x.size(0) >= self.packed_from_rows
        # One row goes to oneDNN as uint8 with zero point 128 (the same sums): as int8 oneDNN
        # took 6 ms for it, not 30 us.
        zero_point = 128 if packed and x.size(0) == 1 else 0
        q, row_scale = quantize_rows(x, zero_point) if native is None else \
            kernels.quantize_rows(native, x.contiguous(), zero_point)
        if packed:  # float sums, exact: below 2^24 in magnitude (127 * 127 * 1,024)
            sums = torch.ops.onednn.qlinear_pointwise(
                q, 1.0, zero_point, self.packed, self.unit_scales, self.zero_points, None, 1.0, 0,
                torch.float32, "none", [], "")
        else:
            sums = torch._int_mm(q, self.weight.t())  # (N, out): int32 sums, exact
        y = self.rescale(sums, row_scale) if native is None else \
            kernels.rescale(native, sums, row_scale, self.scale, self.bias)
        return y.view(*shape[:-1], self.out_features)

    @property
    def packed(self):
        """The weights in oneDNN's blocked layout (None: no such product in this PyTorch),
        reordered on first use: where the C product runs they are never needed."""
        if self._onednn is None:
            self._onednn = (_prepacked(self.weight),)
        return self._onednn[0]

    def rescale(self, sums: torch.Tensor, row_scale: torch.Tensor) -> torch.Tensor:
        """sums * s(x) * s(W) + b, one factor at a time, in place: torch.addcmul over
        (256, 8000) took 8 ms here, these passes 0.3 ms (the output projection of a beam-4
        step, 256 rows). The order is the formula's whichever product ran, so a row's values
        do not depend on the size of its batch."""
        y = sums.float().mul_(row_scale).mul_(self.scale)
        return y if self.bias is None else y.add_(self.bias)

    def rows(self, ids: torch.Tensor) -> Int8Linear:
        """This layer restricted to the output rows ``ids``: the same int8 rows and scales, so
        each remaining output is bit for bit what the whole layer computes."""
        part = Int8Linear.__new__(Int8Linear)
        nn.Module.__init__(part)
        part._set(self.weight[ids].contiguous(), self.scale[ids].contiguous(),
                  None if self.bias is None else self.bias[ids].contiguous())
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
    model.fuse_projections()  # exact under per-row int8: the same rows, the same scales
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                setattr(parent, name, Int8Linear(child))
    if hasattr(model, "native_step"):  # the Transformer: each decoding step in one C call
        model.native_step = NativeStep.build(model)
    return model
