"""How the C library's allocator treats the memory a training or decoding step frees.

Every training step allocates the same kinds of large blocks: the logits of a batch, their
log-softmax and the gradients of both (tens of MB each at batches of 8,000 tokens). glibc serves
blocks over its mmap threshold with fresh mappings and unmaps them when they are freed, so every
step faults the same memory in and zeroes it again. Kept in the heap, freed blocks serve the next
step's. Decoding is hit the same way at a smaller scale (the logits of a beam step).
``bench/train_throughput.py`` and ``bench/decode.py`` measure the gain.

It must be set before torch allocates (``nmt.cli.main`` does it for every command,
``serve.create_app`` for the service, the benchmarks first thing): set later, the heap is already
strewn with small objects and large blocks are reused less. This module imports no torch for that
reason. The price: memory grows with the largest blocks the process ever held.
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
