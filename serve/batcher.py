"""Dynamic batching: concurrent requests share one pass through the model.

Requests put their sentences on one bounded queue. A worker takes what is waiting, up to
``max_sentences``. While another batch is in the model (the server is under load) it first waits
at most ``max_wait`` for more, so batches grow (5 ms by default: with worker processes, 0-10 ms
served 32 clients alike and 20 ms less; see the README); jobs that are already waiting always
join. A lone request on an idle server goes at once. The worker groups its jobs
by model and search settings, translates each group as one batch off the event loop (in a worker
process by default, serve/workers.py), and hands every request its own results. A full queue
refuses new work at once (503) rather than letting latency grow.

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
    attention: bool = False
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    released: bool = False  # its sentences no longer count as waiting

    @property
    def wanted(self) -> bool:
        return not self.future.done()


class Batcher:
    def __init__(self, max_queue: int, max_wait: float, max_sentences: int, workers: int,
                 translate):
        """Limits come from ``serve.settings.Settings``, the one place their defaults live;
        ``translate(translator, sentences, beam_size, n_best, attention)`` is a coroutine that runs one batch
        off the event loop (``serve.workers``), ``workers`` of them at a time."""
        self.max_queue, self.max_wait, self.max_sentences = max_queue, max_wait, max_sentences
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.waiting = 0  # sentences queued or being translated
        self.batch_sizes: list[int] = []  # recent batch sizes, for tests and the load benchmark
        self.n_workers = max(1, workers)
        self.translate = translate
        self.translating = 0  # batches in the model right now
        self.workers: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.workers = [loop.create_task(self.run()) for _ in range(self.n_workers)]

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
                     attention: bool = False):
        # An empty queue takes any request, however large (it is within the request limits).
        if self.waiting and self.waiting + len(sentences) > self.max_queue:
            raise QueueFull()
        job = Job(translator, sentences, beam_size, n_best, attention)
        self.waiting += len(sentences)
        QUEUE_DEPTH.set(self.waiting)
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
            self.waiting -= len(job.sentences)
            QUEUE_DEPTH.set(self.waiting)

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
                groups.setdefault((id(job.translator), job.beam_size, job.n_best, job.attention),
                                  []).append(job)
            for group in groups.values():
                await self.translate_group(group)

    async def translate_group(self, jobs: list[Job]) -> None:
        """Translate jobs of one model and search setting, ``max_sentences`` at a time, so that a
        job abandoned meanwhile costs at most the chunk already in the model. If a chunk fails,
        its jobs are retried one by one: a sentence that breaks the model fails its own request
        and no other."""
        self.translating += 1
        try:
            chunk: list[Job] = []
            for job in jobs:
                for part in self.pieces(job):
                    chunk.append(part)
                    if sum(len(j.sentences) for j in chunk) >= self.max_sentences:
                        await self.translate_chunk(chunk)
                        chunk = []
            if chunk:
                await self.translate_chunk(chunk)
        finally:
            self.translating -= 1
            for job in jobs:
                self.release(job)

    def pieces(self, job: Job) -> list[Job]:
        """A large job as several of at most ``max_sentences`` sentences (one future each)."""
        if len(job.sentences) <= self.max_sentences:
            return [job]
        loop = asyncio.get_running_loop()
        parts = [Job(job.translator, job.sentences[i:i + self.max_sentences], job.beam_size,
                     job.n_best, job.attention, loop.create_future(), released=True)
                 for i in range(0, len(job.sentences), self.max_sentences)]
        gather = asyncio.gather(*(p.future for p in parts))
        gather.add_done_callback(lambda done: _settle(job, done))
        job.future.add_done_callback(lambda _: [p.future.cancel() for p in parts])
        return parts

    async def translate_chunk(self, chunk: list[Job]) -> None:
        live = [job for job in chunk if job.wanted]
        if not live:
            return
        try:
            await self.run_model(live)
        except Exception as error:  # a model failure reaches the requests, not the worker
            if len(live) == 1:
                if live[0].wanted:
                    live[0].future.set_exception(error)
                return
            for job in live:  # alone, so that the innocent ones succeed
                await self.translate_chunk([job])

    async def run_model(self, live: list[Job]) -> None:
        sentences = [s for job in live for s in job.sentences]
        first = live[0]
        BATCH_SIZE.observe(len(sentences))
        self.batch_sizes = (self.batch_sizes + [len(sentences)])[-1000:]
        start = time.perf_counter()
        results = await self.translate(first.translator, sentences, first.beam_size,
                                       first.n_best, first.attention)
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


def _settle(job: Job, gathered: asyncio.Future) -> None:
    """A split job's result: its pieces' results in order, or the first failure."""
    error = None if gathered.cancelled() else gathered.exception()
    if job.future.done() or gathered.cancelled():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result([r for part in gathered.result() for r in part])
