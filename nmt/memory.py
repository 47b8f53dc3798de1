"""How the C library's allocator treats the memory a training step frees.

Every training step allocates the same kinds of large blocks: the logits of a batch, their
log-softmax and the gradients of both are 3,700 x 8,000 bf16 values each (59 MB) at batches of
8,000 tokens. glibc serves blocks over its mmap threshold (at most 32 MB) with fresh mappings and
unmaps them when they are freed, so every step faults the same memory in and zeroes it again:
82,000 page faults per step. Kept in the heap, freed blocks serve the next step's: 10,000 faults,
and 8-25% more tokens/s (``bench/train_throughput.py``, fresh processes alternated).

It must be set before torch allocates (the CLI's ``train`` command does it before importing torch):
set later, the heap is already strewn with small objects and large blocks are reused less.
This module imports no torch for that reason.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Large blocks from the heap, never handed back to the system; False where the C library
    is not glibc (nothing changes there)."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
                and mallopt(M_TOP_PAD, 256 << 20))
