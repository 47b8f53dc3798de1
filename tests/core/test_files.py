"""Files and folders are written whole or not at all: a failed write removes what it wrote and
says so in one line; a killed one leaves nothing a reader takes for the real thing, and the next
write cleans it up (nmt/core/files.py)."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from nmt.core.errors import NmtError
from nmt.core.files import atomic_write, atomic_write_text, replace_dir, staged, staging_dir


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")

    def half_then_full(handle):
        handle.write(b"x" * 1000)
        full_disk()

    with pytest.raises(NmtError, match="state.json: cannot write: No space left on device"):
        atomic_write(target, half_then_full)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_folder_write_leaves_the_old_folder_and_no_staging(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(NmtError, match="model: cannot write"):
        with staged(target) as staging:
            (staging / "a").write_text("new")
            full_disk()
    assert (target / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_folder_is_swapped_whole(tmp_path):
    target = tmp_path / "model"
    for version in ("one", "two"):
        with staged(target) as staging:
            (staging / "version").write_text(version)
    assert (target / "version").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_leftovers_of_a_killed_write_are_removed_by_the_next(tmp_path):
    target = tmp_path / "model"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    for leftover in (f".model.tmp-{dead}-abc", f".model.old-{dead}"):
        (tmp_path / leftover).mkdir()
    mine = staging_dir(target)  # a write in progress (this process): kept
    replace_dir(mine, target)
    with staged(target):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


CHILD = """
import shutil, sys
from pathlib import Path
from nmt.core.files import replace_dir, staging_dir
source, target = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while True:
    staging = staging_dir(target)
    for name in sorted(p.name for p in source.iterdir()):
        shutil.copyfile(source / name, staging / name)
    replace_dir(staging, target)
"""


def test_a_model_directory_survives_kill_9_at_any_moment(tmp_path, trained_model_dir):
    """20 writers killed at random moments: after each the model directory loads, the service's
    scan finds it alone, and the next write leaves no leftover."""
    from nmt.models.directory import read_model_config
    from serve.registry import find_model_dirs

    models = tmp_path / "models"
    target = models / "tiny"
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    written = False
    for _ in range(20):
        writer = subprocess.Popen([sys.executable, "-c", CHILD, str(trained_model_dir), str(target)],
                                  stdout=subprocess.PIPE, env=env)
        assert writer.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.3))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert target.exists() or not written  # once written, always there
        if target.exists():
            written = True
            read_model_config(target)  # complete, and its checksums hold
            assert find_model_dirs(models) == [target]
    with staged(target) as staging:
        for name in sorted(p.name for p in trained_model_dir.iterdir()):
            (staging / name).write_bytes((trained_model_dir / name).read_bytes())
    read_model_config(target)
    assert [p.name for p in models.iterdir()] == ["tiny"]


def test_text_files_too_are_written_whole(tmp_path):
    target = tmp_path / "notes.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
