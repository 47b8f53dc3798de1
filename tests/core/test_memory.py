"""Training keeps freed memory in the heap (nmt/core/memory.py): a step's large blocks serve the next."""

import platform
import subprocess
import sys

import pytest

FAULTS_OF_A_REUSED_BLOCK = """
import resource, sys
if sys.argv[1] == "keep":
    from nmt.core.memory import keep_freed_memory
    assert keep_freed_memory()
import torch

block = torch.ones(16 * 2**20)  # 64 MB, like a batch's logits
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = torch.ones(12 * 2**20)  # the next step's, a little smaller
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_A_REUSED_BLOCK, mode], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a setting of glibc's allocator")
def test_a_freed_large_block_is_reused_without_faulting_pages_in_again():
    assert faults("plain") > 10_000  # 48 MB freshly mapped: 12,288 pages faulted in and zeroed
    assert faults("keep") < 1_000
