"""nmt against CTranslate2 on the same weights: ``python bench/decode.py --peer ctranslate2``.

The model directory is exported with ``nmt export --format ctranslate2`` (fp32; CTranslate2
quantizes to int8 itself at load, ``compute_type="int8"``). Both engines translate
test_2016_flickr with tokenization and detokenization included and model loading excluded: nmt
through SentencePiece -> ``search`` on length-sorted batches -> SentencePiece, CTranslate2
through SentencePiece -> ``translate_batch(max_batch_size=B)`` (it sorts by length itself) ->
SentencePiece. Each engine first tries every batch size of ``BATCH_SIZES`` once and keeps its
fastest; then the engines run in turn, ``--rounds`` times each, and the median is reported with
BLEU. Greedy lone-sentence latency (p50, p90) is measured the same way, one sentence per call.

An engine is loaded for each run and released after it: a live CTranslate2 translator slowed
PyTorch in the same process by 1.5-1.8x even while idle (greedy int8 test set: 1.9 s alone,
3.1-3.7 s beside it, 1.9 s again once it was deleted).
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from nmt.batching import encode_source, pad
from nmt.export.ct2 import export_ctranslate2, require_ctranslate2
from nmt.scoring import bleu
from nmt.search import search
from nmt.tokenizer import PAD_ID
from nmt.translator import Translator

BATCH_SIZES = (32, 64, 128, 256)
LATENCY_SENTENCES = 100


class NmtEngine:
    name = "nmt"

    def __init__(self, model_dir: str, precision: str):
        self.translator = Translator.load(model_dir, quantize="none" if precision == "fp32"
                                          else precision)
        self.decode = self.translator.config.decode

    def translate(self, sentences: list[str], beam: int, batch: int) -> list[str]:
        tokenizer, d = self.translator.tokenizer, self.decode
        ids = tokenizer.encode(sentences)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list = [None] * len(ids)
        with torch.inference_mode():
            for at in range(0, len(order), batch):
                chunk = order[at:at + batch]
                src = pad([encode_source(ids[i]) for i in chunk])
                hyps = search(self.translator.model, src, src != PAD_ID, beam, 1,
                              d.length_penalty, d.max_len_ratio, d.max_len_offset)
                for i, h in zip(chunk, hyps):
                    out[i] = h[0].tokens
        return tokenizer.decode(out)


class Ct2Engine:
    name = "ctranslate2"

    def __init__(self, ct2_dir: Path, precision: str, decode, threads: int):
        ct2 = require_ctranslate2()
        import sentencepiece as spm

        self.translator = ct2.Translator(str(ct2_dir), device="cpu", inter_threads=1,
                                         intra_threads=threads,
                                         compute_type="float32" if precision == "fp32" else precision)
        self.sp = spm.SentencePieceProcessor(model_file=str(ct2_dir / "spm.model"))
        self.decode = decode

    def translate(self, sentences: list[str], beam: int, batch: int) -> list[str]:
        d = self.decode
        results = self.translator.translate_batch(
            self.sp.encode(sentences, out_type=str), max_batch_size=batch, beam_size=beam,
            length_penalty=d.length_penalty, max_decoding_length=256)
        return self.sp.decode([r.hypotheses[0] for r in results])


def timed(load, sentences, beam, batch) -> tuple[float, list[str]]:
    engine = load()
    try:
        engine.translate(sentences[:8], beam, batch)  # warm-up: first-call allocations
        start = time.perf_counter()
        out = engine.translate(sentences, beam, batch)
        return time.perf_counter() - start, out
    finally:
        del engine
        gc.collect()


def best_batch(load, sentences, beam) -> int:
    return min(BATCH_SIZES, key=lambda b: timed(load, sentences, beam, b)[0])


def latency(load, sentences) -> dict:
    engine = load()
    times = []
    for sentence in sentences[:LATENCY_SENTENCES]:
        start = time.perf_counter()
        engine.translate([sentence], 1, 1)
        times.append((time.perf_counter() - start) * 1000)
    del engine
    gc.collect()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p90_ms": round(times[int(0.9 * len(times)) - 1], 2)}


def compare(model_dir: str, sources: list[str], references: list[str], rounds: int,
            threads: int) -> dict:
    """Both engines, int8 and fp32, greedy and beam 4, alternated; the JSON of the README row."""
    results: dict = {"peer": "ctranslate2", "batch_sizes_tried": list(BATCH_SIZES), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        ct2_dir = Path(tmp) / "ct2"
        check = export_ctranslate2(model_dir, ct2_dir, "none", sources)
        results["export_greedy_agreement"] = {"equal": check.equal, "sentences": check.sentences}
        decode = NmtEngine(model_dir, "fp32").decode
        for precision in ("int8", "fp32"):
            loaders = {"nmt": lambda p=precision: NmtEngine(model_dir, p),
                       "ctranslate2": lambda p=precision: Ct2Engine(ct2_dir, p, decode, threads)}
            for beam in (1, 4):
                batches = {name: best_batch(load, sources, beam) for name, load in loaders.items()}
                seconds: dict = {name: [] for name in loaders}
                outputs: dict = {}
                for _ in range(rounds):
                    for name, load in loaders.items():
                        took, outputs[name] = timed(load, sources, beam, batches[name])
                        seconds[name].append(took)
                for name in loaders:
                    row = {"engine": name, "precision": precision, "beam": beam,
                           "batch": batches[name], "sentences": len(sources),
                           "seconds": [round(s, 3) for s in seconds[name]],
                           "sentences_per_s": round(len(sources) / statistics.median(seconds[name]), 1),
                           "bleu": round(bleu(outputs[name], references)[0].score, 2)}
                    results["runs"].append(row)
                    print(row, file=sys.stderr, flush=True)
            for name, load in loaders.items():
                results[f"lone_sentence_greedy_{name}_{precision}"] = latency(load, sources)
    by = {(r["engine"], r["precision"], r["beam"]): r["sentences_per_s"] for r in results["runs"]}
    results["ratios_nmt_over_ctranslate2_int8"] = {
        f"beam{b}": round(by[("nmt", "int8", b)] / by[("ctranslate2", "int8", b)], 2)
        for b in (1, 4)}
    return results
