"""Training states are saved whole: a save killed at any moment leaves the last good state
resumable and no leftover past the next save; a save on a full disk says so in one line
(nmt/train/checkpoint.py)."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT

from nmt.core.errors import NmtError
from nmt.train import checkpoint
from nmt.train.checkpoint import load_training_state, save_training_state

CHILD = """
import sys, torch
from nmt.train.checkpoint import save_training_state
print("ready", flush=True)
step = int(sys.argv[2])
while True:
    step += 1
    save_training_state(sys.argv[1], {"step": step, "weights": torch.full((1 << 20,), float(step))}, step)
"""


def test_a_save_killed_at_any_moment_leaves_a_resumable_state(tmp_path):
    rng, env, step = random.Random(0), {**os.environ, "PYTHONPATH": str(ROOT)}, 0
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(step * 1000)],
                                  stdout=subprocess.PIPE, env=env)
        assert writer.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.05, 0.5))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        state = load_training_state(tmp_path, log=lambda *a: None)
        if state is not None:
            assert torch.equal(state["weights"], torch.full((1 << 20,), float(state["step"])))
            step = state["step"] // 1000 + 1
    save_training_state(tmp_path, {"step": 0}, 99_999_999)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_save_on_a_full_disk_is_one_line_and_keeps_the_last_state(tmp_path, monkeypatch):
    save_training_state(tmp_path, {"step": 1}, 1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(NmtError, match="state-00000002.pt: cannot write: No space left"):
        save_training_state(tmp_path, {"step": 2}, 2)
    assert load_training_state(tmp_path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state-00000001.pt", "states.json"]
