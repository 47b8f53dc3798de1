"""nmt against CTranslate2 on the same weights: ``python bench/decode.py --peer ctranslate2``.

The model directory is exported with ``nmt export --format ctranslate2`` (fp32; CTranslate2
quantizes to int8 itself at load, ``compute_type="int8"``). Both engines translate
test_2016_flickr with tokenization and detokenization included and model loading excluded: nmt
through SentencePiece -> ``search`` on length-sorted batches -> SentencePiece, CTranslate2
through SentencePiece -> ``translate_batch(max_batch_size=B)`` (it sorts by length itself) ->
SentencePiece.

Both engines run in two layouts of the machine's cores: one decoder using all cores (nmt: torch
threads; CTranslate2: ``intra_threads``), and one decoder per core with one thread each, batches
shared out (nmt: worker processes, as ``nmt serve`` runs; CTranslate2: ``inter_threads``). In
each, an engine first tries every batch size of ``BATCH_SIZES`` once and keeps its fastest; then
the engines run in turn, ``--rounds`` times each, and the median is reported with BLEU.
Lone-sentence greedy latency (p50, p90; one sentence per call) is measured at one thread and at
all cores.

Each engine searches with its own length normalisation, tuned on val: nmt divides a beam's
log-probability by GNMT's ((5 + |y|) / 6) ** alpha with the alpha of the model's config, and
CTranslate2 by |y| ** alpha, so the model's alpha is not CTranslate2's best: its alpha is chosen
here among ``CT2_LENGTH_PENALTIES`` by beam-4 int8 BLEU on val (1.0 for transformer-de-en, where
the model's 1.5 lost 0.12 BLEU). Beam 4's int8 outputs of the two engines on the benchmark set
are then compared by paired significance (sacreBLEU's paired bootstrap and approximate
randomization, as ``nmt evaluate`` does).

An engine is loaded for each run and released after it: a live CTranslate2 translator slowed
PyTorch in the same process by 1.5-1.8x even while idle (greedy int8 test set: 1.9 s alone,
3.1-3.7 s beside it, 1.9 s again once it was deleted).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from nmt.decode.translator import Translator
from nmt.evaluate.report import System, significance
from nmt.evaluate.scoring import bleu
from nmt.export.ct2 import export_ctranslate2, require_ctranslate2

BATCH_SIZES = (32, 64, 128, 256)
CT2_LENGTH_PENALTIES = (0.6, 1.0, 1.5, 2.0)
LATENCY_SENTENCES = 100

_worker_translator: Translator | None = None  # in an nmt worker process


def _load_worker(model_dir: str, precision: str) -> None:
    global _worker_translator
    torch.set_num_threads(1)
    _worker_translator = Translator.load(model_dir, quantize=precision)
    first = _worker_translator.tokenizer.encode(["Ein Hund."])
    search_ids(_worker_translator, first, 1)  # each worker's first-call costs, untimed


def _search_batch(job: tuple[list[list[int]], int]) -> list[list[int]]:
    return search_ids(_worker_translator, *job)


def search_ids(translator: Translator, ids: list[list[int]], beam: int) -> list[list[int]]:
    return [h[0].tokens for h in translator.search_batch(ids, beam)]


class NmtEngine:
    name = "nmt"

    def __init__(self, model_dir: str, precision: str, workers: int = 1, threads: int = 1):
        quantize = "none" if precision == "fp32" else precision
        self.translator = Translator.load(model_dir, quantize=quantize)
        self.decode = self.translator.config.decode
        self.pool = None
        if workers > 1:  # spawned: a forked child of a process that ran OpenMP must not use it
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(workers, _load_worker, (model_dir, quantize))
        else:
            torch.set_num_threads(threads)

    def translate(self, sentences: list[str], beam: int, batch: int) -> list[str]:
        tokenizer = self.translator.tokenizer
        ids = tokenizer.encode(sentences)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        chunks = [order[at:at + batch] for at in range(0, len(order), batch)]
        jobs = [([ids[i] for i in chunk], beam) for chunk in chunks]
        if self.pool is None:
            done = [search_ids(self.translator, *job) for job in jobs]
        else:
            done = self.pool.map(_search_batch, jobs, chunksize=1)
        out: list = [None] * len(ids)
        for chunk, tokens in zip(chunks, done):
            for i, t in zip(chunk, tokens):
                out[i] = t
        return tokenizer.decode(out)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


class Ct2Engine:
    name = "ctranslate2"

    def __init__(self, ct2_dir: Path, precision: str, length_penalty: float, workers: int = 1,
                 threads: int = 1):
        ct2 = require_ctranslate2()
        import sentencepiece as spm

        self.translator = ct2.Translator(str(ct2_dir), device="cpu", inter_threads=workers,
                                         intra_threads=threads,
                                         compute_type="float32" if precision == "fp32" else precision)
        self.sp = spm.SentencePieceProcessor(model_file=str(ct2_dir / "spm.model"))
        self.length_penalty = length_penalty

    def translate(self, sentences: list[str], beam: int, batch: int) -> list[str]:
        results = self.translator.translate_batch(
            self.sp.encode(sentences, out_type=str), max_batch_size=batch, beam_size=beam,
            length_penalty=self.length_penalty, max_decoding_length=256)
        return self.sp.decode([r.hypotheses[0] for r in results])

    def close(self) -> None:
        pass


def release(engine) -> None:
    engine.close()
    del engine
    gc.collect()


def time_once(engine, sentences, beam, batch) -> tuple[float, list[str]]:
    engine.translate(sentences[:32], beam, 4)  # warm-up, in batches that reach every decoder
    start = time.perf_counter()
    out = engine.translate(sentences, beam, batch)
    return time.perf_counter() - start, out


def timed(load, sentences, beam, batch) -> tuple[float, list[str]]:
    engine = load()
    try:
        return time_once(engine, sentences, beam, batch)
    finally:
        release(engine)


def best_batch(load, sentences, beam) -> int:
    """The fastest of ``BATCH_SIZES``, the engine loaded once."""
    engine = load()
    trials = {batch: time_once(engine, sentences, beam, batch)[0] for batch in BATCH_SIZES}
    release(engine)
    return min(trials, key=trials.get)


def latency(load, sentences) -> dict:
    engine = load()
    times = []
    for sentence in sentences[:LATENCY_SENTENCES]:
        start = time.perf_counter()
        engine.translate([sentence], 1, 1)
        times.append((time.perf_counter() - start) * 1000)
    release(engine)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p90_ms": round(times[int(0.9 * len(times)) - 1], 2)}


def loader(name: str, model_dir: str, ct2_dir: Path, precision: str, length_penalty: float,
           workers: int, threads: int):
    if name == "nmt":
        return lambda: NmtEngine(model_dir, precision, workers, threads)
    return lambda: Ct2Engine(ct2_dir, precision, length_penalty, workers, threads)


def layouts(cores: int) -> list[tuple[int, int]]:
    """(decoders, threads each): one decoder on all cores, or one per core."""
    return [(1, cores)] + ([(cores, 1)] if cores > 1 else [])


def race(loaders: dict, sources: list[str], references: list[str], beam: int,
         rounds: int) -> tuple[list[dict], dict[str, list[str]]]:
    """Each engine at its fastest batch size, the engines in turn ``rounds`` times; the rows and
    each engine's translations."""
    batch = {name: best_batch(load, sources, beam) for name, load in loaders.items()}
    seconds: dict = {name: [] for name in loaders}
    outputs: dict = {}
    for _ in range(rounds):
        for name, load in loaders.items():
            took, outputs[name] = timed(load, sources, beam, batch[name])
            seconds[name].append(took)
    return [{"engine": name, "beam": beam, "batch": batch[name], "sentences": len(sources),
             "seconds": [round(s, 3) for s in seconds[name]],
             "sentences_per_s": round(len(sources) / statistics.median(seconds[name]), 1),
             "bleu": round(bleu(outputs[name], references)[0].score, 2)} for name in loaders], outputs


def tune_length_penalty(ct2_dir: Path, val: tuple[list[str], list[str]], threads: int) -> dict:
    """CTranslate2's alpha of ``CT2_LENGTH_PENALTIES`` with the best beam-4 int8 BLEU on val."""
    bleus = {}
    for alpha in CT2_LENGTH_PENALTIES:
        engine = Ct2Engine(ct2_dir, "int8", alpha, 1, threads)
        bleus[alpha] = round(bleu(engine.translate(val[0], 4, 64), val[1])[0].score, 2)
        release(engine)
    return {"chosen": max(bleus, key=bleus.get), "val_bleu_beam4_int8": bleus}


def paired(outputs: dict[str, list[str]], references: list[str]) -> dict:
    """nmt against CTranslate2 (the baseline): BLEU and chrF, p-values of paired tests."""
    return significance([System(name, hyps) for name, hyps in outputs.items()], "ctranslate2",
                        references)


def compare(model_dir: str, sources: list[str], references: list[str], rounds: int,
            cores: int, val: tuple[list[str], list[str]]) -> dict:
    """Both engines, int8 and fp32, greedy and beam 4, alternated; the JSON of the README row.
    ``val`` (sources, references) tunes CTranslate2's length penalty."""
    results: dict = {"peer": "ctranslate2", "batch_sizes_tried": list(BATCH_SIZES), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        ct2_dir = Path(tmp) / "ct2"
        check = export_ctranslate2(model_dir, ct2_dir, "none", sources)
        results["export_greedy_agreement"] = {"equal": check.equal, "sentences": check.sentences}
        tuned = tune_length_penalty(ct2_dir, val, cores)
        nmt = NmtEngine(model_dir, "int8", 1, cores)
        tuned["nmt_val_bleu_beam4_int8"] = round(bleu(nmt.translate(val[0], 4, 64), val[1])[0].score, 2)
        release(nmt)
        results["ctranslate2_length_penalty"] = tuned
        for precision in ("int8", "fp32"):
            loaders = {name: {layout: loader(name, model_dir, ct2_dir, precision, tuned["chosen"],
                                             *layout)
                              for layout in layouts(cores)} for name in ("nmt", "ctranslate2")}
            for layout, beam in itertools.product(layouts(cores), (1, 4)):
                rows, outputs = race({name: by_layout[layout] for name, by_layout in loaders.items()},
                                     sources, references, beam, rounds)
                for row in rows:
                    row.update(precision=precision, decoders=layout[0], threads_each=layout[1])
                    results["runs"].append(row)
                    print(row, file=sys.stderr, flush=True)
                if precision == "int8" and beam == 4 and layout == (1, cores):
                    results["paired_beam4_int8"] = paired(outputs, references)
            for name in loaders:
                for threads in sorted({1, cores}):
                    load = loader(name, model_dir, ct2_dir, precision, tuned["chosen"], 1, threads)
                    results[f"lone_sentence_greedy_{name}_{precision}_{threads}_threads"] = latency(
                        load, sources)
    results["ratios_nmt_over_ctranslate2_int8"] = ratios(results["runs"])
    return results


def ratios(runs: list[dict]) -> dict:
    """nmt's sentences/s over CTranslate2's, int8, per layout and beam, and at each one's best."""
    speed = {(r["engine"], r["decoders"], r["threads_each"], r["beam"]): r["sentences_per_s"]
             for r in runs if r["precision"] == "int8"}
    out = {f"{d}x{t}_threads_beam{b}": round(v / speed[("ctranslate2", d, t, b)], 2)
           for (engine, d, t, b), v in speed.items() if engine == "nmt"}
    for b in (1, 4):
        best = {e: max(v for (engine, _, _, beam), v in speed.items() if engine == e and beam == b)
                for e in ("nmt", "ctranslate2")}
        out[f"best_layout_beam{b}"] = round(best["nmt"] / best["ctranslate2"], 2)
    return out
