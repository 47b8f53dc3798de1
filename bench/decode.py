"""Decoding speed of a model directory on test_2016_flickr: sentences/s and target tokens/s.

    python bench/decode.py [--model models/transformer-de-en] [--quick] [--beam N]
    python bench/decode.py --peer ctranslate2 [--rounds 3]   (pip install -e '.[export]')

Runs greedy, beam 4 and beam 5, at batch 1 (sentence by sentence) and in large length-sorted
batches, with the models' caches and with a decoder that recomputes the whole prefix every step
(the no-cache baseline, timed in the same run, fp32), in fp32 and with int8 weights (the default); also
single-sentence greedy latency (median, p90) and BLEU of every large-batch setting. Prints JSON.
Model loading is excluded from every figure. Decoding writes only the target language's pieces
when the model lists them (nmt/decode/target_vocabulary.py); ``--full-vocabulary`` measures without.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nmt.core.memory import keep_freed_memory  # noqa: E402 (imports no torch)

keep_freed_memory()  # as the CLI and the server do, before torch allocates (nmt/core/memory.py)
import torch  # noqa: E402

from nmt.data.corpus import read_parallel, split_file  # noqa: E402
from nmt.decode.translator import Translator  # noqa: E402
from nmt.evaluate.scoring import bleu  # noqa: E402
from nmt.models.directory import read_model_config  # noqa: E402


def run(translator: Translator, ids, beam: int, batch_size: int, cache: bool) -> tuple[float, list]:
    """Seconds to decode every sentence, and the hypotheses in input order."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out = [None] * len(ids)
    start = time.perf_counter()
    for at in range(0, len(order), batch_size):
        chunk = order[at:at + batch_size]
        for i, hyps in zip(chunk, translator.search_batch([ids[i] for i in chunk], beam, 1, cache)):
            out[i] = hyps[0].tokens
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/transformer-de-en")
    parser.add_argument("--data", default="data/multi30k")
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="200 sentences, fewer settings")
    parser.add_argument("--beam", type=int, help="only large cached batches with this beam, int8 "
                        "(the offline reference of bench/load.py)")
    parser.add_argument("--peer", choices=["ctranslate2"],
                        help="the same weights in another engine, alternated (bench/peer_ctranslate2.py)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per engine with --peer")
    parser.add_argument("--full-vocabulary", action="store_true",
                        help="decode over the whole vocabulary, not the target language's pieces "
                        "(nmt/decode/target_vocabulary.py)")
    parser.add_argument("--pair", help="a direction of a multilingual model, e.g. fr-en "
                        "(default: the model's first)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    if args.peer:
        from bench.peer_ctranslate2 import compare

        data = read_model_config(Path(args.model)).data
        sources, references = read_parallel(split_file(args.data, args.split, data.src_lang),
                                            split_file(args.data, args.split, data.tgt_lang))
        val = read_parallel(split_file(args.data, "val", data.src_lang),
                            split_file(args.data, "val", data.tgt_lang))
        if args.quick:
            sources, references, val = sources[:200], references[:200], (val[0][:200], val[1][:200])
        print(json.dumps(compare(args.model, sources, references, args.rounds, os.cpu_count(), val),
                         indent=2))
        return
    results = {"benchmark": "decode", "model": args.model, "pair": args.pair, "split": args.split,
               "threads": torch.get_num_threads(), "torch": torch.__version__, "runs": []}
    for quantize in ("none", "int8") if args.beam is None else ("int8",):
        precision = "fp32" if quantize == "none" else quantize
        translator = Translator.load(args.model, quantize=quantize,
                                     pair=tuple(args.pair.split("-")) if args.pair else None
                                     ).with_options(restrict_output=not args.full_vocabulary)
        results["output_pieces"] = len(getattr(translator.decoder, "id_list", ())) \
            or translator.tokenizer.vocab_size
        sources, references = read_parallel(split_file(args.data, args.split, translator.src_lang),
                                            split_file(args.data, args.split, translator.tgt_lang))
        if args.quick:
            sources, references = sources[:200], references[:200]
        ids = translator.encode_sources(sources)
        run(translator, ids[:32], 4, 32, True)  # warm-up
        settings = [(1, args.batch, True), (4, args.batch, True), (5, args.batch, True),
                    (1, args.batch, False), (4, args.batch, False), (1, 1, True), (4, 1, True)]
        if quantize != "none":  # the no-cache baseline and the BLEU identity check are fp32's
            settings = [s for s in settings if s[2]]
        if args.quick:
            settings = [(1, args.batch, True), (4, args.batch, True)]
        if args.beam is not None:
            settings = [(args.beam, args.batch, True)]
        for beam, batch, cache in settings:
            subset = ids if batch > 1 else ids[:200]  # batch 1 is slow: 200 sentences suffice
            seconds, hyps = run(translator, subset, beam, batch, cache)
            row = {"precision": precision, "beam": beam, "batch": batch, "cache": cache,
                   "sentences": len(subset), "seconds": round(seconds, 2),
                   "sentences_per_s": round(len(subset) / seconds, 1),
                   "target_tokens_per_s": round(sum(len(h) + 1 for h in hyps) / seconds)}
            if batch > 1:
                texts = translator.tokenizer.decode(hyps)
                row["bleu"] = round(bleu(texts, references[:len(subset)])[0].score, 2)
            results["runs"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if args.beam is not None:
            continue
        latencies = []
        for i in range(100):
            start = time.perf_counter()
            translator.translate_sentences([sources[i]], beam_size=1)
            latencies.append((time.perf_counter() - start) * 1000)
        results[f"single_sentence_greedy_ms_{precision}"] = {
            "median": round(statistics.median(latencies), 2), "p90": round(sorted(latencies)[89], 2)}
    by = {(r["precision"], r["beam"], r["batch"], r["cache"]): r for r in results["runs"]}
    cached, uncached = by.get(("fp32", 4, args.batch, True)), by.get(("fp32", 4, args.batch, False))
    if cached and uncached:
        results["beam4_cache_speedup"] = round(cached["sentences_per_s"] / uncached["sentences_per_s"], 2)
        results["beam4_bleu_equal_cached_uncached"] = cached["bleu"] == uncached["bleu"]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
