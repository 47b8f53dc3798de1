"""Training throughput: source+target tokens/s (real tokens, padding excluded) of full training
steps (forward, loss, backward, clip, Adam) for a config, fp32 against bf16 autocast.

    python bench/train_throughput.py [--config configs/transformer-de-en.toml] [--steps 30]
                                     [--peer]

``--peer`` times Hugging Face's MarianMTModel of the same size on the same batches, in the plain
loop a user would write (bf16 autocast, the model's own loss), alternately with nmt, so that the
two are compared on one machine in one sitting (needs ``pip install transformers``; not a
dependency of nmt). The peer's batch is about 4,000 target tokens: ``--set train.max_tokens=8000``.
Prints JSON. Uses Multi30k batches from data/multi30k when present (else random sentences of
Multi30k's lengths), so the figure is comparable with real training.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt.core.memory import keep_freed_memory  # noqa: E402 (imports no torch)

if __name__ == "__main__" and not any(arg.startswith("marian") for arg in sys.argv):
    keep_freed_memory()  # as `nmt train` does, before torch allocates; the peer runs as a plain loop

import torch  # noqa: E402

from nmt.core.config import load_config  # noqa: E402
from nmt.data.batching import BatchPlan  # noqa: E402
from nmt.models import build_model  # noqa: E402
from nmt.train.loop import autocast, label_smoothed_loss  # noqa: E402


def model_summary(config) -> dict:
    m = config.model
    if m.arch == "rnn":
        sizes = {"embed_dim": m.embed_dim, "hidden_size": m.hidden_size, "layers": m.rnn_layers}
    else:
        sizes = {"d_model": m.d_model, "layers": [m.n_encoder_layers, m.n_decoder_layers],
                 "heads": m.n_heads, "d_ff": m.d_ff}
    return {"arch": m.arch, **sizes, "vocab": config.data.vocab_size}


def corpus_ids(config, vocab_size: int):
    """Token ids of the training split when it and a vocabulary exist, else length-matched noise."""
    from nmt.data.corpus import read_parallel, split_file

    spm = next(iter(sorted(Path("models").glob("*/spm.model"))), None)
    d = config.data
    try:
        src, tgt = read_parallel(split_file(d.corpus, d.train_split, d.src_lang),
                                 split_file(d.corpus, d.train_split, d.tgt_lang))
    except Exception:
        src = None
    if src is not None and spm is not None:
        from nmt.data.tokenizer import Tokenizer

        tok = Tokenizer(spm)
        return tok.encode(src), tok.encode(tgt), tok.vocab_size, "multi30k"
    rng = random.Random(0)
    lengths = [max(3, int(rng.gauss(14, 5))) for _ in range(29000)]
    src = [[rng.randrange(4, vocab_size) for _ in range(n)] for n in lengths]
    tgt = [[rng.randrange(4, vocab_size) for _ in range(max(3, n + rng.randint(-2, 2)))]
           for n in lengths]
    return src, tgt, vocab_size, "synthetic"


def timed_steps(model, loss_of, config, src, tgt, precision: str, steps: int,
                warmup: int) -> dict:
    """Full training steps of ``model`` (``loss_of(batch)`` under autocast, backward, clip, Adam)
    over the config's token-budget batches; tokens/s of the ``steps`` after ``warmup``."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9, fused=True)
    plan = BatchPlan(src, tgt, config.train.max_tokens, seed=1)
    batches = plan.epoch(0)
    tokens, seconds = 0, 0.0
    for i in range(warmup + steps):
        batch = plan.batch(batches[i % len(batches)])
        start = time.perf_counter()
        with autocast(precision):
            loss = loss_of(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            seconds += time.perf_counter() - start
            tokens += batch.n_src_tokens + batch.n_tgt_tokens
    return {"precision": precision, "steps": steps, "tokens_per_s": round(tokens / seconds),
            "seconds_per_step": round(seconds / steps, 4)}


def measure(config, src, tgt, vocab, precision: str, steps: int, warmup: int) -> dict:
    """nmt's model and loss, as ``nmt train`` computes them."""
    torch.manual_seed(0)
    model = build_model(config.model, vocab).train()

    def loss_of(batch):
        logits = model(batch.src, batch.src_mask, batch.tgt_in, logits_mask=batch.tgt_out != 0)
        return label_smoothed_loss(logits, batch.tgt_out, 0.1) / batch.n_tgt_tokens

    return {"system": "nmt",
            **timed_steps(model, loss_of, config, src, tgt, precision, steps, warmup)}


def measure_marian(config, src, tgt, vocab, steps: int, warmup: int, precision: str = "bf16",
                   attention: str | None = None) -> dict:
    """MarianMTModel with nmt's sizes and its own loss, fed the same token-budget batches."""
    from transformers import MarianConfig, MarianMTModel

    m = config.model
    torch.manual_seed(0)
    model = MarianMTModel(MarianConfig(
        vocab_size=vocab, d_model=m.d_model, encoder_layers=m.n_encoder_layers,
        decoder_layers=m.n_decoder_layers, encoder_attention_heads=m.n_heads,
        decoder_attention_heads=m.n_heads, encoder_ffn_dim=m.d_ff, decoder_ffn_dim=m.d_ff,
        dropout=m.dropout, pad_token_id=0, decoder_start_token_id=1, eos_token_id=2,
        max_position_embeddings=512, share_encoder_decoder_embeddings=True,
        **({"attn_implementation": attention} if attention else {}))).train()

    def loss_of(batch):
        labels = batch.tgt_out.masked_fill(batch.tgt_out == 0, -100)  # -100: not scored
        return model(input_ids=batch.src, attention_mask=batch.src_mask.long(),
                     decoder_input_ids=batch.tgt_in, labels=labels).loss

    return {"system": "transformers.MarianMTModel",
            "attention": model.config._attn_implementation,
            **timed_steps(model, loss_of, config, src, tgt, precision, steps, warmup)}


def measure_in_fresh_process(system: str, args) -> dict:
    """One measurement in a process of its own: a process that has already trained another
    model runs the next one measurably slower (its heap is fragmented), whichever comes second."""
    command = [sys.executable, __file__, "--system", system, "--precision", "bf16",
               "--config", args.config, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    for item in args.set:
        command += ["--set", item]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["results"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/transformer-de-en.toml")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", action="append", choices=["fp32", "bf16"])
    parser.add_argument("--system", default="nmt", choices=["nmt", "marian-eager", "marian-sdpa"],
                        help="what to time (Marian: transformers' attention implementations)")
    parser.add_argument("--peer", action="store_true",
                        help="rounds of nmt bf16 / Marian eager / Marian sdpa, each in a fresh "
                        "process, alternated so that all see the same machine")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = load_config(args.config, args.set)
    torch.set_num_threads(config.train.threads or os.cpu_count())
    comparison, source = None, None
    if args.peer:  # this VM's speed drifts by 15% within minutes: compare within each round
        import importlib.util

        if importlib.util.find_spec("transformers") is None:
            raise SystemExit("--peer times transformers' MarianMTModel: pip install transformers")
        results, ratios = [], []
        for _ in range(args.rounds):
            ours, *peers = [measure_in_fresh_process(system, args)
                            for system in ("nmt", "marian-eager", "marian-sdpa")]
            results += [ours, *peers]
            ratios.append(round(ours["tokens_per_s"] / max(p["tokens_per_s"] for p in peers), 2))
        comparison = {"nmt_over_fastest_marian_per_round": ratios,
                      "median": sorted(ratios)[len(ratios) // 2]}
    else:
        src, tgt, vocab, source = corpus_ids(config, config.data.vocab_size)
        precisions = args.precision or ["fp32", "bf16"]
        if args.system == "nmt":
            results = [measure(config, src, tgt, vocab, p, args.steps, args.warmup)
                       for p in precisions]
        else:
            attention = args.system.split("-")[1]
            results = [measure_marian(config, src, tgt, vocab, args.steps, args.warmup, p,
                                      attention) for p in precisions]
    print(json.dumps({
        "benchmark": "train_throughput", "data": source, "max_tokens": config.train.max_tokens,
        "model": model_summary(config),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "results": results,
        **({"peer_comparison": comparison} if comparison else {}),
    }, indent=2))


if __name__ == "__main__":
    main()
