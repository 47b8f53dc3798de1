"""The training loop end to end on tiny models and the toy corpus."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, tiny_config, toy_corpus, write_lines

from nmt.core.errors import NmtError
from nmt.data.batching import BatchPlan
from nmt.decode.search import greedy_search
from nmt.decode.translator import Translator
from nmt.models import build_model
from nmt.train.loop import (
    inverse_sqrt_schedule,
    label_smoothed_loss,
    linear_schedule,
    train,
    training_device,
)


def test_schedule_warms_up_then_decays():
    assert inverse_sqrt_schedule(50, 100) == pytest.approx(0.5)
    assert inverse_sqrt_schedule(100, 100) == pytest.approx(1.0)
    assert inverse_sqrt_schedule(400, 100) == pytest.approx(0.5)


def test_linear_schedule_warms_up_then_reaches_zero_at_max_steps():
    assert linear_schedule(50, 100, 1100) == pytest.approx(0.5)
    assert linear_schedule(100, 100, 1100) == pytest.approx(1.0)
    assert linear_schedule(600, 100, 1100) == pytest.approx(0.5)
    assert linear_schedule(1100, 100, 1100) == 0.0
    assert linear_schedule(1500, 100, 1100) == 0.0  # never negative


def test_max_steps_stops_training_with_the_linear_schedule_at_zero(tmp_path, toy_corpus_dir):
    run = tmp_path / "run"
    train(tiny_config(toy_corpus_dir, max_epochs=50, lr_schedule="linear", max_steps=30,
                      warmup_steps=5, average_last=0), run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    lrs = [r["lr"] for r in rows if r["kind"] == "train"]
    assert max(steps) == 30 and [r for r in rows if r["kind"] == "eval"][-1]["step"] == 30
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == 0.0  # decayed to exactly 0 at step 30
    assert (run / "last" / "model.safetensors").is_file()


def test_device_auto_takes_a_gpu_only_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device("auto") == torch.device("cpu")
    assert training_device("cpu") == torch.device("cpu")
    with pytest.raises(NmtError, match="no CUDA GPU"):
        training_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device("auto") == torch.device("cuda")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert training_device("auto") == torch.device("cuda", 1)  # one GPU per process


def test_tiny_model_overfits_64_pairs(toy_tokenizer):
    """A small Transformer reproduces 64 training pairs almost perfectly."""
    torch.manual_seed(0)
    src, tgt = toy_corpus(64, seed=5)
    src_ids, tgt_ids = toy_tokenizer.encode(src), toy_tokenizer.encode(tgt)
    config = tiny_config(".").model
    model = build_model(config.__class__(d_model=64, n_heads=4, n_encoder_layers=2,
                                         n_decoder_layers=2, d_ff=128, dropout=0.0),
                        toy_tokenizer.vocab_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    plan = BatchPlan(src_ids, tgt_ids, max_tokens=10_000, seed=0)
    batch = plan.batch(plan.epoch(0)[0])
    assert batch.size == 64
    for _ in range(150):
        logits = model(batch.src, batch.src_mask, batch.tgt_in, logits_mask=batch.tgt_out != 0)
        loss = label_smoothed_loss(logits, batch.tgt_out, 0.0) / batch.n_tgt_tokens
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    hyps = greedy_search(model, batch.src, batch.src_mask)
    exact = sum(h[0].tokens == tgt_ids[i] for h, i in zip(hyps, batch.indices))
    assert exact >= 60, f"only {exact}/64 reproduced"


def test_run_directory_and_translation(trained_model_dir):
    run = trained_model_dir.parent
    for name in ("best", "last", "averaged"):
        assert (run / name / "model.safetensors").is_file()
        assert (run / name / "config.json").is_file() and (run / name / "spm.model").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["epoch"] for r in evals] == list(range(1, 21))
    assert evals[-1]["val_bleu"] > 50, evals  # the toy code is easy: a working loop learns it
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    translator = Translator.load(trained_model_dir)
    out = translator.translate(["Ein hund läuft im park.", "", "   "])
    assert out[0].lower().rstrip(".") == "a dog runs in the park"
    assert out[1:] == ["", ""]


def test_train_cli_on_own_files(tmp_path):
    src, tgt = toy_corpus(300, seed=9)
    s = write_lines(tmp_path / "own.de", src)
    t = write_lines(tmp_path / "own.en", tgt)
    config = tmp_path / "own.toml"
    config.write_text(f"""
[data]
valid_src_file = "{s}"
valid_tgt_file = "{t}"
vocab_size = 320
[model]
d_model = 32
n_heads = 2
n_encoder_layers = 1
n_decoder_layers = 1
d_ff = 64
[train]
max_epochs = 1
max_tokens = 2000
precision = "fp32"
""")
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config", str(config),
                             "--src-file", str(s), "--tgt-file", str(t),
                             "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    assert "cleaning: 300 pairs read" in result.stderr  # its own files, cleaned (toy duplicates)
    assert "teacher" not in result.stderr


def test_missing_data_fails_before_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nmt", "train", "--config",
                             str(ROOT / "configs/transformer-de-en.toml"), "--set",
                             f"data.corpus={tmp_path / 'absent'}", "--run-dir",
                             str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "absent" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten(trained_model_dir, toy_corpus_dir):
    from nmt.core.errors import NmtError

    with pytest.raises(NmtError, match="--resume"):
        train(tiny_config(toy_corpus_dir), trained_model_dir.parent)
