"""Where a batch is translated: in worker processes (the default), or in threads of the server.

A decoder step at service batch sizes is a chain of small operations, and every one of them
needs Python's interpreter lock to be dispatched. Two batches decoded by two threads of one
process therefore take turns more than they run side by side (two processes decoded about 1.5x what two
threads did on 2 cores, ``bench/load.py``). So by default each worker is a process of its own, forked from the
server after the models are loaded: it shares their weights (copy-on-write) and starts at once.

Forked workers keep the GNU OpenMP rule: a child of a process whose OpenMP thread pool has run
hangs if it starts a parallel region of its own. The server process therefore runs torch on one
thread (it never decodes a batch itself); its workers may use any number.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch

log = logging.getLogger("nmt.serve")


class WorkerDied(Exception):
    """A worker process ended in the middle of a batch (killed, out of memory)."""


_translators: dict[str, object] = {}  # in a worker process: the server's, inherited at fork


def _start_worker(translators: dict[str, object], threads: int) -> None:
    global _translators
    _translators = translators
    torch.set_num_threads(threads)
    # The server decides when its workers stop: after the batches in flight (SIGTERM, Ctrl-C to
    # the process group). The handlers and signal fd inherited from the server are not ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    try:  # and a worker never outlives a server killed outright
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (AttributeError, OSError):
        pass


def translate_batch(translator, prepared: list, beam_size: int, n_best: int, extras: frozenset):
    """Prepared sentences (``Translator.prepare``, done by the route) translated and finished;
    with "attention" in ``extras``, the cross-attention over the decoded ids (the page's
    heatmap); with "links", each translation's word links to its sentence."""
    return translator.translate_prepared(prepared, beam_size, n_best, "attention" in extras,
                                         "links" in extras)


def _translate(name: str, pair: tuple[str, str], sentences: list[str], beam_size: int,
               n_best: int, extras: frozenset):
    return translate_batch(_translators[name].for_pair(*pair), sentences, beam_size, n_best,
                           extras)


class ThreadWorkers:
    """Batches translated in threads of the server process (``NMT_PROCESSES=false``)."""

    def start(self) -> None:
        pass

    async def translate(self, translator, sentences: list[str], beam_size: int, n_best: int,
                        extras: frozenset = frozenset()):
        return await asyncio.to_thread(translate_batch, translator, sentences, beam_size, n_best,
                                       extras)

    def close(self) -> None:
        pass


class ProcessWorkers:
    """Batches translated in ``count`` worker processes, each decoding with ``threads`` threads."""

    def __init__(self, translators: dict[str, object], count: int, threads: int):
        self.translators, self.count, self.threads = translators, count, threads
        self.pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Fork the workers now, while the server is still single-minded (before it serves)."""
        self.pool = ProcessPoolExecutor(self.count, multiprocessing.get_context("fork"),
                                        initializer=_start_worker,
                                        initargs=(self.translators, self.threads))
        for future in [self.pool.submit(int) for _ in range(self.count)]:
            future.result()

    async def translate(self, translator, sentences: list[str], beam_size: int, n_best: int,
                        extras: frozenset = frozenset()):
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, _translate, translator.name, (translator.src_lang, translator.tgt_lang),
                sentences, beam_size, n_best, extras)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this batch fails, the next gets new workers.
            if self.pool is pool:
                log.error("a translation worker process died; starting new workers")
                pool.shutdown(wait=False, cancel_futures=True)
                self.start()
            raise WorkerDied() from None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
