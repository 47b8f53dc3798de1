"""The passes around each int8 product in C: quantizing the input rows and rescaling the sums.

In PyTorch these are eleven operations per product (abs, amax, clamp, two divisions, round,
a conversion to int8; a conversion to float, two products, a sum), each a dispatch and a pass
over memory, and at the sizes of a decoding step the dispatches dominate: 27% of a greedy
batch of 64 went to them (``torch.profiler``, 1 thread), more than to the products. Here each
is one loop (``int8_rows.c``): 2.4-2.9x faster for 1 to 64 rows, 2.2x for the output
projection's 256 x 4,030 sums (us per call, 1 thread: quantize 64 x 256 9.3 against 26.6;
rescale 64 x 768 9.1 against 23.4).

The C code performs the same float operations in the same order as the PyTorch expressions
(``nmt.quantize.quantize_rows``, ``Int8Linear.rescale``), so every value is bit for bit the
same and every translation too (tests/test_kernels.py). It is compiled on first use with the
system's C compiler (``$CC``, else ``cc``) for this CPU into the user's cache
(``$NMT_CACHE_DIR``, else ``$XDG_CACHE_HOME/nmt`` or ``~/.cache/nmt``), about a second, and
loaded with ctypes. Without a compiler, or with ``NMT_NATIVE_KERNELS=0``, ``load()`` returns None
and the PyTorch expressions run instead.
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
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("int8_rows.c")
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
        subprocess.run([compiler, *FLAGS, "-o", partial, str(SOURCE)], check=True,
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
    for function in (library.quantize_rows, library.rescale_int_sums, library.rescale_float_sums):
        function.restype = None
    return library


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled kernels, built on first use; None where they cannot be (logged once)."""
    if os.environ.get("NMT_NATIVE_KERNELS", "1") == "0":
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        log.info("no C compiler (%s): int8 products rescale with PyTorch operations", compiler)
        return None
    key = hashlib.sha256("\n".join([SOURCE.read_text(), compiler, *FLAGS, platform.machine(),
                                    _cpu_features()]).encode()).hexdigest()[:16]
    target = cache_dir() / "kernels" / f"int8_rows-{key}.so"
    try:
        if not target.exists():
            _build(compiler, target)
        return _declare(ctypes.CDLL(str(target)))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or error
        log.warning("could not build %s (%s): int8 products rescale with PyTorch operations",
                    SOURCE.name, str(detail).strip()[:500])
        return None


def quantize_rows(library: ctypes.CDLL, x: torch.Tensor,
                  zero_point: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, K) contiguous float32 -> q (N, K), int8 (zero_point 0) or uint8 around 128, and
    the scales (N, 1): ``nmt.quantize.quantize_rows``'s values."""
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
