"""int8 decoding in C: the passes around each product, the products, a whole decoding step.

``int8_rows.c``: quantizing the input rows and rescaling the sums, in PyTorch eleven operations
per product, each a dispatch and a pass over memory (more time than the products themselves at
decoding sizes); here one loop each.

``int8_product.c`` does the whole of ``Int8Linear`` in one call (quantize, multiply, rescale)
with AVX-512 VNNI for one to three rows and AMX tiles from four, on weights packed once into
the layout both read: one call per layer instead of three, which is what a lone sentence's step
is made of.

``decoder_step.c`` is a Transformer decoding step in one call (``nmt/decode/native_step.py``).

The passes and products perform the same float operations in the same order as the PyTorch
expressions (``nmt.decode.quantize.quantize_rows``, ``Int8Linear.rescale``), and integer sums are exact
whichever instructions form them, so every value of an ``Int8Linear`` is bit for bit the same
(tests/decode/test_kernels.py). All of it is compiled on first use with the system's C compiler
(``$CC``, else ``cc``) for this CPU into the user's cache (``$NMT_CACHE_DIR``, else
``$XDG_CACHE_HOME/nmt`` or ``~/.cache/nmt``), a few seconds, and loaded with ctypes. Without a
compiler, or with ``NMT_NATIVE_KERNELS=0``, ``load()`` returns None and PyTorch runs instead.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCES = sorted(Path(__file__).parent.glob("*.c"))
HEADERS = sorted(Path(__file__).parent.glob("*.h"))
# -ffp-contract=off: no fused multiply-add, each product rounded as PyTorch rounds it.
# -fno-strict-aliasing: the maximum reads floats as their bit patterns.
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-strict-aliasing", "-fno-trapping-math",
         "-fno-math-errno", "-fPIC", "-shared"]


def cache_dir() -> Path:
    if os.environ.get("NMT_CACHE_DIR"):
        return Path(os.environ["NMT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nmt"


def _cpu_features() -> str:
    """What -march=native compiles for: a library built on another CPU must not be reused."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line for line in cpuinfo if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _build(compiler: str, target: Path) -> None:
    """Compiles to a temporary name and renames: processes starting together each get a whole file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *FLAGS, "-o", partial, *map(str, SOURCES)], check=True,
                       capture_output=True, text=True, timeout=120)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _declare(library: ctypes.CDLL) -> ctypes.CDLL:
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    library.quantize_rows.argtypes = [pointer, size, size, size, pointer, pointer]
    library.rescale_int_sums.argtypes = [pointer, size, size, pointer, pointer, pointer, pointer]
    library.rescale_float_sums.argtypes = [pointer, size, size, pointer, pointer, pointer]
    library.pack_weights.argtypes = [pointer, size, size, pointer, pointer]
    library.int8_linear.argtypes = [ctypes.POINTER(Int8Weights), pointer, size, pointer]
    library.decoder_step.argtypes = [pointer, pointer, size, size, pointer, size, pointer, pointer,
                                     pointer, size, pointer, size, pointer, pointer, pointer, size,
                                     pointer]
    library.decoder_step.restype = size
    for function in (library.quantize_rows, library.rescale_int_sums, library.rescale_float_sums,
                     library.pack_weights):
        function.restype = None
    library.int8_linear.restype = library.int8_product_level.restype = size
    # 0: no int8 product instructions here, 1: AVX-512 VNNI, 2: and AMX (asked of Linux now)
    library.product_level = library.int8_product_level()
    return library


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled kernels, built on first use; None where they cannot be (logged once)."""
    if os.environ.get("NMT_NATIVE_KERNELS", "1") == "0":
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        log.info("no C compiler (%s): int8 decoding runs in PyTorch operations", compiler)
        return None
    sources = [source.read_text() for source in SOURCES + HEADERS]
    key = hashlib.sha256("\n".join([*sources, compiler, *FLAGS, platform.machine(),
                                    _cpu_features()]).encode()).hexdigest()[:16]
    target = cache_dir() / "kernels" / f"int8-{key}.so"
    try:
        if not target.exists():
            _build(compiler, target)
        return _declare(ctypes.CDLL(str(target)))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or error
        log.warning("could not build %s (%s): int8 decoding runs in PyTorch operations",
                    ", ".join(source.name for source in SOURCES), str(detail).strip()[:500])
        return None


def quantize_rows(library: ctypes.CDLL, x: torch.Tensor,
                  zero_point: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, K) contiguous float32 -> q (N, K), int8 (zero_point 0) or uint8 around 128, and
    the scales (N, 1): ``nmt.decode.quantize.quantize_rows``'s values."""
    n, k = x.shape
    q = torch.empty(n, k, dtype=torch.uint8 if zero_point else torch.int8)
    scale = torch.empty(n, 1)
    library.quantize_rows(x.data_ptr(), n, k, zero_point, q.data_ptr(), scale.data_ptr())
    return q, scale


def rescale(library: ctypes.CDLL, sums: torch.Tensor, row_scale: torch.Tensor,
            col_scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """sums (N, M) int32 (into a new tensor) or float32 (in place) -> sums * rows * cols + bias."""
    n, m = sums.shape
    bias_pointer = None if bias is None else bias.data_ptr()
    if sums.dtype == torch.int32:
        y = torch.empty(n, m)
        library.rescale_int_sums(sums.data_ptr(), n, m, row_scale.data_ptr(),
                                 col_scale.data_ptr(), bias_pointer, y.data_ptr())
        return y
    library.rescale_float_sums(sums.data_ptr(), n, m, row_scale.data_ptr(), col_scale.data_ptr(),
                               bias_pointer)
    return sums


class Int8Weights(ctypes.Structure):
    """``Int8Weights`` of int8_product.h: what the C product reads of an Int8Linear."""

    _fields_ = [("packed", ctypes.c_void_p), ("sums128", ctypes.c_void_p),
                ("scale", ctypes.c_void_p), ("bias", ctypes.c_void_p),
                ("out_features", ctypes.c_int64), ("in_features", ctypes.c_int64)]


@dataclass(frozen=True)
class PackedWeights:
    """An int8 layer in ``int8_product.c``'s layout: the tensors, and the C view of them
    (``c``) that ``linear`` and the native decoding step read."""

    packed: torch.Tensor  # ((out + 63) // 64 * 64 * in,) int8
    sums128: torch.Tensor  # (out,) int32: 128 x each weight row's sum
    scale: torch.Tensor  # (out,) the weights' scales
    bias: torch.Tensor | None
    c: Int8Weights


def pack_weights(library: ctypes.CDLL, weight: torch.Tensor, scale: torch.Tensor,
                 bias: torch.Tensor | None) -> PackedWeights | None:
    """``weight`` (out, in) int8 with its scales and bias packed for ``linear``; None where this
    CPU has no int8 product instructions or ``in`` is not a multiple of 4."""
    out_features, in_features = weight.shape
    if library.product_level == 0 or in_features % 4:
        return None
    weight, scale = weight.contiguous(), scale.contiguous()
    bias = None if bias is None else bias.contiguous()
    packed = torch.empty((out_features + 63) // 64 * 64 * in_features, dtype=torch.int8)
    sums128 = torch.empty(out_features, dtype=torch.int32)
    library.pack_weights(weight.data_ptr(), out_features, in_features, packed.data_ptr(),
                         sums128.data_ptr())
    c = Int8Weights(packed.data_ptr(), sums128.data_ptr(), scale.data_ptr(),
                    None if bias is None else bias.data_ptr(), out_features, in_features)
    return PackedWeights(packed, sums128, scale, bias, c)


def linear(library: ctypes.CDLL, x: torch.Tensor, weights: PackedWeights) -> torch.Tensor:
    """x (N, in) contiguous float32 -> Int8Linear's y (N, out), quantized, multiplied and
    rescaled in one call."""
    y = torch.empty(x.size(0), weights.c.out_features)
    library.int8_linear(weights.c, x.data_ptr(), x.size(0), y.data_ptr())
    return y
