"""Training that loses nothing: exact resume after SIGKILL, damaged states detected, and
data-parallel training with torchrun matching one process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nmt.core.errors import NmtError
from nmt.train.checkpoint import load_training_state, save_training_state

TINY = """
name = "tiny"
[data]
corpus = "{corpus}"
vocab_size = 320
[model]
d_model = 32
n_heads = 2
n_encoder_layers = 1
n_decoder_layers = 1
d_ff = 64
dropout = {dropout}
[train]
max_epochs = {epochs}
max_tokens = {max_tokens}
lr = 3e-3
warmup_steps = 20
save_every_steps = 5
log_every_steps = 5
average_last = 2
precision = "fp32"
eval_max_sentences = 20
threads = 1
"""


def write_config(tmp_path, corpus, epochs=3, dropout=0.1, max_tokens=400) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(corpus=corpus, epochs=epochs, dropout=dropout,
                                max_tokens=max_tokens))
    return path


def run_train(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "nmt", "train", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=env)


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, toy_corpus_dir):
    config = write_config(tmp_path, toy_corpus_dir)
    straight = run_train("--config", str(config), "--run-dir", str(tmp_path / "straight"),
                         cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "nmt", "train", "--config", str(config),
                                "--run-dir", str(run)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and process.poll() is None:
        manifest = run / "states.json"
        if manifest.is_file():
            steps = [s["step"] for s in json.loads(manifest.read_text())["states"]]
            if max(steps) >= 30:  # mid-way through the second epoch
                process.send_signal(signal.SIGKILL)
                killed_at = max(steps)
                break
        time.sleep(0.02)
    process.wait()
    assert killed_at is not None, "the run ended before it could be killed"
    resumed = run_train("--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at epoch" in resumed.stderr

    a, b = final_weights(tmp_path / "straight"), final_weights(run)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)


def make_states(tmp_path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    for step in (10, 20, 30):
        save_training_state(run, {"step": torch.tensor(step)}, step)
    assert not (run / "state-00000010.pt").exists()  # only the newest two are kept
    return run


def test_truncated_state_is_detected_and_resume_falls_back(tmp_path):
    run = make_states(tmp_path)
    newest = run / "state-00000030.pt"
    newest.write_bytes(newest.read_bytes()[:-20])
    messages = []
    state = load_training_state(run, log=messages.append)
    assert int(state["step"]) == 20
    assert "state-00000030.pt" in messages[0] and "checksum mismatch" in messages[0]


def test_flipped_byte_is_detected(tmp_path):
    run = make_states(tmp_path)
    for name in ("state-00000030.pt", "state-00000020.pt"):
        data = bytearray((run / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (run / name).write_bytes(bytes(data))
    with pytest.raises(NmtError, match="no intact training state"):
        load_training_state(run, log=lambda *a: None)


def test_corrupt_state_on_resume_names_the_file(tmp_path, toy_corpus_dir):
    config = write_config(tmp_path, toy_corpus_dir, epochs=1)
    run = tmp_path / "run"
    assert run_train("--config", str(config), "--run-dir", str(run), cwd=tmp_path).returncode == 0
    newest = sorted(run.glob("state-*.pt"))[-1]
    newest.write_bytes(b"garbage")
    result = run_train("--resume", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert newest.name in result.stderr and "trying an older state" in result.stderr


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent /
                    "torchrun").exists(), reason="torchrun is not installed")
def test_distributed_two_processes_match_one(tmp_path, toy_corpus_dir):
    # Few, large batches: Adam turns float-rounding differences in near-zero gradients into
    # full-size steps, so a long run drifts apart even when every update is computed right.
    config = write_config(tmp_path, toy_corpus_dir, epochs=1, dropout=0.0, max_tokens=3000)
    single = run_train("--config", str(config), "--run-dir", str(tmp_path / "one"), cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29517",
                             "-m", "nmt", "train", "--config", str(config), "--run-dir",
                             str(tmp_path / "two")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "parameters identical on all 2 processes" in result.stderr
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    # The key projection's bias has a gradient of exactly zero in exact arithmetic (it shifts
    # every score of a query by the same amount, which softmax ignores), so both runs see only
    # rounding noise there, which Adam scales up to full steps: it is left out of the comparison.
    drift = {name: float((one[name] - two[name]).abs().max()) for name in one
             if not name.endswith("w_k.bias")}
    assert max(drift.values()) < 1e-4, sorted(drift.items(), key=lambda kv: -kv[1])[:5]


def test_resume_with_a_different_vocabulary_is_refused(tmp_path, toy_corpus_dir):
    from conftest import toy_corpus

    from nmt.data.tokenizer import train_tokenizer

    config = write_config(tmp_path, toy_corpus_dir, epochs=1)
    run = tmp_path / "run"
    assert run_train("--config", str(config), "--run-dir", str(run), cwd=tmp_path).returncode == 0
    src, tgt = toy_corpus(500, seed=4)
    train_tokenizer(src + tgt, run / "spm.model", vocab_size=330)
    result = run_train("--resume", str(run), cwd=tmp_path)
    assert result.returncode == 2
    assert "vocabulary" in result.stderr and "Traceback" not in result.stderr


def test_resume_mid_epoch_over_many_shards_equals_an_uninterrupted_run(tmp_path, toy_corpus_dir):
    """A store of 15 shards: the run stops inside an epoch (in some shard of its seeded order)
    and continues; the weights equal those of a run that never stopped."""
    from conftest import tiny_config

    from nmt.train.loop import train

    def config(steps):
        return tiny_config(toy_corpus_dir, data=dict(shard_pairs=100), max_steps=steps,
                           max_epochs=3, save_every_steps=0, average_last=1)

    train(config(60), tmp_path / "straight")
    train(config(23), tmp_path / "stopped")  # 23 of about 45 batches of the first epoch
    state = json.loads((tmp_path / "stopped" / "states.json").read_text())
    assert [s["step"] for s in state["states"]][-1] == 23
    train(config(60), tmp_path / "stopped", resume=True)
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "stopped")
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)
