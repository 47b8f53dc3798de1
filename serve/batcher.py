"""Dynamic batching: concurrent requests share one pass through the model.

Requests put their sentences on one bounded queue. A worker takes what is waiting, up to
``max_sentences``. While another batch is in the model (the server is under load) it first waits
at most ``max_wait`` for more, so batches grow (5 ms by default: with worker processes, 0-10 ms
served 32 clients alike, 20 ms less); jobs that are already waiting always
join. A lone request on an idle server goes at once. The worker groups its jobs
by model and search settings, translates each group as one batch off the event loop (in a worker
process by default, serve/workers.py), and hands every request its own results. A full queue
refuses new work at once (503) rather than letting latency grow.

Large work is never batched with short requests: a part of a request with more than
``heavy_tokens`` subwords (a sentence far longer than people usually type, or many sentences
sent at once) goes to a lane of its own, one batch at a time, so that however much of it
arrives, at most one worker is busy with it and the others keep serving everyone else
(bench/faults.py measures it; a long sentence is a part of its own). A large request goes
through the model ``max_sentences`` at a time, taking turns with the requests that arrive
meanwhile (what does not fit in a batch is queued again).

Several workers (one per core by default, each decoding with one torch thread) translate batches
side by side: a decoder step at these batch sizes is a chain of small operations, and two such
chains keep two cores busy better than one chain split across both cores, whose threads wait
for each other at every operation (and stall whenever the HTTP side takes a core).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from serve.workers import WorkerDied

BATCH_SIZE = Histogram("nmt_batch_sentences", "Sentences per model batch",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
BATCH_SECONDS = Histogram("nmt_batch_seconds", "Time a model batch takes to translate",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
QUEUE_DEPTH = Gauge("nmt_queue_sentences", "Sentences waiting to be translated")
TOKENS = Counter("nmt_translated_tokens", "Subword tokens produced", ["model"])
SENTENCES = Counter("nmt_translated_sentences", "Sentences translated", ["model"])


class QueueFull(Exception):
    pass


@dataclass
class Job:
    translator: object
    sentences: list[str]
    beam_size: int
    n_best: int
    extras: frozenset = frozenset()  # "attention", "links": what else each translation carries
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    released: bool = False  # its sentences no longer count as waiting
    tokens: list[int] | None = None  # source subwords of each sentence, when known

    @property
    def wanted(self) -> bool:
        return not self.future.done()


class Batcher:
    def __init__(self, max_queue: int, max_wait: float, max_sentences: int, workers: int,
                 translate, heavy_tokens: int = 128):
        """Limits come from ``serve.settings.Settings``, the one place their defaults live;
        ``translate(translator, sentences, beam_size, n_best, extras)`` is a coroutine that
        runs one batch off the event loop (``serve.workers``), ``workers`` of them at a time,
        plus the lane of sentences over ``heavy_tokens`` subwords."""
        self.max_queue, self.max_wait, self.max_sentences = max_queue, max_wait, max_sentences
        self.heavy_tokens = heavy_tokens
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.heavy: asyncio.Queue[Job] = asyncio.Queue()  # one sentence per job
        self.held = {False: 0, True: 0}  # sentences queued or in the model, by is_heavy
        self.batch_sizes: list[int] = []  # recent batch sizes, for tests and the load benchmark
        self.n_workers = max(1, workers)
        self.translate = translate
        self.translating = 0  # batches in the model right now
        self.workers: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.workers = [loop.create_task(self.run()) for _ in range(self.n_workers)]
        self.workers.append(loop.create_task(self.run_heavy()))

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while self.waiting and any(not w.done() for w in self.workers):
            await asyncio.sleep(0.01)
        for worker in self.workers:
            worker.cancel()
        for worker in self.workers:
            try:
                await worker
            except asyncio.CancelledError:
                pass

    async def submit(self, translator, sentences: list[str], beam_size: int, n_best: int,
                     extras: frozenset = frozenset(), tokens: list[int] | None = None):
        """The translations of ``sentences`` (``tokens``: their source subwords, which route
        the long ones to the heavy lane)."""
        job = Job(translator, sentences, beam_size, n_best, extras, tokens=tokens)
        # Large work and short requests are queued against separate budgets of ``max_queue``
        # sentences (they are decoded in separate lanes); an empty budget takes any request,
        # however large (it is within the request limits).
        lane = self.is_heavy(job)
        if self.held[lane] and self.held[lane] + len(sentences) > self.max_queue:
            raise QueueFull()
        self.held[lane] += len(sentences)
        QUEUE_DEPTH.set(self.waiting)
        # Translated, failed or abandoned: either way its sentences stop counting as waiting.
        job.future.add_done_callback(lambda _: self.release(job))
        self.queue.put_nowait(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            # A request that timed out or whose client left: it stops counting at once, and the
            # worker skips whatever of it has not reached the model yet.
            job.future.cancel()
            self.release(job)
            raise

    def release(self, job: Job) -> None:
        if not job.released:
            job.released = True
            self.held[self.is_heavy(job)] -= len(job.sentences)
            QUEUE_DEPTH.set(self.waiting)

    @property
    def waiting(self) -> int:
        """Sentences queued or being translated, large work and short requests together."""
        return sum(self.held.values())

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0].sentences)
            deadline = time.monotonic() + (self.max_wait if self.translating else 0.0)
            while count < self.max_sentences:
                if not self.queue.empty():  # what is already waiting joins, deadline or not
                    job = self.queue.get_nowait()
                else:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self.queue.get(), timeout)
                    except TimeoutError:
                        break
                jobs.append(job)
                count += len(job.sentences)
            groups: dict[tuple, list[Job]] = {}
            for job in jobs:
                groups.setdefault(_key(job), []).append(job)
            for group in groups.values():
                await self.translate_group(group)

    async def run_heavy(self) -> None:
        """The lane of large parts: one batch at a time (parts of one model and search setting
        that are waiting together share it, up to ``max_sentences``), so that they never hold
        more than one worker."""
        while True:
            chunk = [await self.heavy.get()]
            size, skipped = len(chunk[0].sentences), []
            while not self.heavy.empty():
                part = self.heavy.get_nowait()
                if _key(part) == _key(chunk[0]) and size + len(part.sentences) <= \
                        self.max_sentences:
                    chunk.append(part)
                    size += len(part.sentences)
                else:
                    skipped.append(part)
            for part in skipped:
                self.heavy.put_nowait(part)
            await self.translate_chunk(chunk)

    async def translate_group(self, jobs: list[Job]) -> None:
        """Translate up to ``max_sentences`` of these jobs (of one model and search setting),
        smaller jobs first, and queue the rest again behind what is waiting: a large job takes
        turns with the others, and one abandoned meanwhile costs at most the chunk already in
        the model. If a chunk fails, its jobs are retried one by one: a sentence that breaks the
        model fails its own request and no other. Long sentences go to the heavy lane."""
        self.translating += 1
        try:
            parts = [part for job in jobs for part in self.pieces(job)]
            light = []
            for part in parts:
                if self.is_heavy(part):
                    self.heavy.put_nowait(part)
                else:
                    light.append(part)
            # Smaller jobs first, and only what fits in one batch (the first job always does):
            # short requests never wait in a batch with a large part of another. The rest goes
            # back in the queue, behind the requests that arrived meanwhile: a large request
            # takes turns with the others, batch by batch.
            chunk: list[Job] = []
            size = 0
            for part in sorted(light, key=lambda p: len(p.sentences)):
                if not chunk or size + len(part.sentences) <= self.max_sentences:
                    chunk.append(part)
                    size += len(part.sentences)
                else:
                    self.queue.put_nowait(part)
            if chunk:
                await self.translate_chunk(chunk)
        finally:
            self.translating -= 1

    def is_heavy(self, job: Job) -> bool:
        """A part of more than ``heavy_tokens`` subwords: one long sentence, or many."""
        return job.tokens is not None and sum(job.tokens) > self.heavy_tokens

    def pieces(self, job: Job) -> list[Job]:
        """A job as parts of at most ``max_sentences`` sentences, each long sentence a part of its
        own (one future each, settled into the job's)."""
        tokens = job.tokens or [0] * len(job.sentences)
        cuts, start = [], 0
        for i, n in enumerate(tokens):
            if n > self.heavy_tokens:
                cuts += [(start, i), (i, i + 1)]
                start = i + 1
            elif i - start == self.max_sentences:
                cuts.append((start, i))
                start = i
        cuts = [(a, b) for a, b in cuts + [(start, len(tokens))] if b > a]
        if len(cuts) == 1:
            return [job]
        loop = asyncio.get_running_loop()
        parts = [Job(job.translator, job.sentences[a:b], job.beam_size, job.n_best, job.extras,
                     loop.create_future(), released=True, tokens=tokens[a:b]) for a, b in cuts]
        gather = asyncio.gather(*(p.future for p in parts))
        gather.add_done_callback(lambda done: _settle(job, done))
        job.future.add_done_callback(lambda _: [p.future.cancel() for p in parts])
        return parts

    async def translate_chunk(self, chunk: list[Job], alone: bool = False) -> None:
        live = [job for job in chunk if job.wanted]
        if not live:
            return
        try:
            await self.run_model(live)
        except Exception as error:  # a model failure reaches the requests, not the worker
            if alone or (len(live) == 1 and not isinstance(error, WorkerDied)):
                if live[0].wanted:
                    live[0].future.set_exception(error)
                return
            # Each job alone, so that the innocent ones succeed; a lone job whose worker died
            # (killed from outside, say) is tried once more too: only its own death fails it.
            for job in live:
                await self.translate_chunk([job], alone=True)

    async def run_model(self, live: list[Job]) -> None:
        sentences = [s for job in live for s in job.sentences]
        first = live[0]
        BATCH_SIZE.observe(len(sentences))
        self.batch_sizes = (self.batch_sizes + [len(sentences)])[-1000:]
        start = time.perf_counter()
        results = await self.translate(first.translator, sentences, first.beam_size,
                                       first.n_best, first.extras)
        BATCH_SECONDS.observe(time.perf_counter() - start)
        name = first.translator.name
        SENTENCES.labels(name).inc(len(sentences))
        TOKENS.labels(name).inc(sum(r.tokens for r in results))
        at = 0
        for job in live:
            part = results[at:at + len(job.sentences)]
            at += len(job.sentences)
            if job.wanted:
                job.future.set_result(part)


def _key(job: Job) -> tuple:
    """Jobs with equal keys can share a batch: same model, same search."""
    return id(job.translator), job.beam_size, job.n_best, job.extras


def _settle(job: Job, gathered: asyncio.Future) -> None:
    """A split job's result: its pieces' results in order, or the first failure."""
    error = None if gathered.cancelled() else gathered.exception()
    if job.future.done() or gathered.cancelled():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result([r for part in gathered.result() for r in part])
