"""How the C library's allocator treats the memory a training or decoding step frees.

Every training step allocates the same kinds of large blocks: the logits of a batch, their
log-softmax and the gradients of both are 3,700 x 8,000 bf16 values each (59 MB) at batches of
8,000 tokens. glibc serves blocks over its mmap threshold (at most 32 MB) with fresh mappings and
unmaps them when they are freed, so every step faults the same memory in and zeroes it again:
82,000 page faults per step. Kept in the heap, freed blocks serve the next step's: 10,000 faults,
and 8-25% more tokens/s (``bench/train_throughput.py``, fresh processes alternated).

Decoding is hit the same way at a smaller scale: a beam-4 step over 64 sentences makes 256 x 8,000
logits (8 MB as int32 sums, 8 MB again as floats); the int8 output projection took 7.0 ms with
fresh mappings and 2.0 ms with reused heap blocks, and test_2016_flickr decoded at 276 against 236
sentences/s (beam 4) and 689 against 564 (greedy).

It must be set before torch allocates (``nmt.cli.main`` does it for every command, the server's
app module on import, the benchmarks first thing): set later, the heap is already strewn with
small objects and large blocks are reused less. This module imports no torch for that reason.
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
