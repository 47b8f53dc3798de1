"""Training throughput: source+target tokens/s (real tokens, padding excluded) of full training
steps (forward, loss, backward, clip, Adam) for a config, fp32 against bf16 autocast.

    python bench/train_throughput.py [--config configs/transformer-de-en.toml] [--steps 30]

Prints JSON. Uses Multi30k batches from data/multi30k when present (else random sentences of
Multi30k's lengths), so the figure is comparable with real training.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt.batching import BatchPlan  # noqa: E402
from nmt.config import load_config  # noqa: E402
from nmt.models import build_model  # noqa: E402
from nmt.training import autocast, label_smoothed_loss  # noqa: E402


def corpus_ids(config, vocab_size: int):
    """Token ids of the training split when it and a vocabulary exist, else length-matched noise."""
    from nmt.corpus import load_split

    spm = next(iter(sorted(Path("models").glob("*/spm.model"))), None)
    try:
        data = load_split(config.data, "train")
    except Exception:
        data = None
    if data is not None and spm is not None:
        from nmt.tokenizer import Tokenizer

        tok = Tokenizer(spm)
        return tok.encode(data.src), tok.encode(data.tgt), tok.vocab_size, "multi30k"
    rng = random.Random(0)
    lengths = [max(3, int(rng.gauss(14, 5))) for _ in range(29000)]
    src = [[rng.randrange(4, vocab_size) for _ in range(n)] for n in lengths]
    tgt = [[rng.randrange(4, vocab_size) for _ in range(max(3, n + rng.randint(-2, 2)))]
           for n in lengths]
    return src, tgt, vocab_size, "synthetic"


def measure(config, src, tgt, vocab, precision: str, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build_model(config.model, vocab).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9, fused=True)
    plan = BatchPlan(src, tgt, config.train.max_tokens, seed=1)
    batches = plan.epoch(0)
    tokens, seconds = 0, 0.0
    for i in range(warmup + steps):
        batch = plan.batch(batches[i % len(batches)])
        start = time.perf_counter()
        with autocast(precision):
            logits = model(batch.src, batch.src_mask, batch.tgt_in,
                           logits_mask=batch.tgt_out != 0)
        loss = label_smoothed_loss(logits, batch.tgt_out, 0.1) / batch.n_tgt_tokens
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            seconds += time.perf_counter() - start
            tokens += batch.n_src_tokens + batch.n_tgt_tokens
    return {"precision": precision, "steps": steps, "tokens_per_s": round(tokens / seconds),
            "seconds_per_step": round(seconds / steps, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/transformer-de-en.toml")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", action="append", choices=["fp32", "bf16"])
    args = parser.parse_args()
    config = load_config(args.config, args.set)
    torch.set_num_threads(config.train.threads or os.cpu_count())
    src, tgt, vocab, source = corpus_ids(config, config.data.vocab_size)
    results = [measure(config, src, tgt, vocab, p, args.steps, args.warmup)
               for p in (args.precision or ["fp32", "bf16"])]
    m = config.model
    print(json.dumps({
        "benchmark": "train_throughput", "data": source, "max_tokens": config.train.max_tokens,
        "model": {"arch": m.arch, "d_model": m.d_model, "layers": [m.n_encoder_layers,
                  m.n_decoder_layers], "heads": m.n_heads, "d_ff": m.d_ff, "vocab": vocab},
        "threads": torch.get_num_threads(), "torch": torch.__version__, "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
