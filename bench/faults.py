"""Faults under load: can one request hurt the others? Prints JSON.

    python bench/faults.py --clients 16 --phase-seconds 10

Starts `nmt serve` on a free local port (request timeout 1.5 s, so that timeouts happen within a
phase; the other limits at their defaults), keeps ``--clients`` normal clients translating
single sentences the whole time, and runs phases one after another: nothing else (the
baseline), poison requests (lone surrogates, a text of 5,000 zeros, 80 long words, 5,000 random
letters, absurd numbers, deep nesting), texts that make backtracking patterns slow (long runs
of non-space characters that a link, e-mail or number pattern almost matches, in several
shapes, 64 texts of 5,000 characters a request), oversized but legal requests, requests
abandoned by their clients, requests that time out, attention requests on long texts,
stalled connections (headers or half a body, never finished), a greedy client (one address,
16 connections as fast as they go, against the run's ``NMT_REQ_LIMIT`` of 720 a minute per
client; each normal client has a loopback address of its own), and a killed worker process. For
each phase: the normal requests' failures and latency p50/p95, ``/health``'s latency p50/p99/max
(asked every 50 ms: the event loop's responsiveness), what the abusive requests got, and how
soon after an abandoned or timed-out request the next normal one was served.

Bounded: every phase has a fixed length, every request a timeout, and the server is stopped at
the end; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load import Connection, free_port, process_tree, stop_server  # noqa: E402

from nmt.data.corpus import read_lines, split_file  # noqa: E402

POISON = [
    '{"q": "\\ud800", "source": "de", "target": "en"}',
    '{"q": "ok", "source": "\\ud800", "target": "en"}',
    json.dumps({"q": "0" * 5000, "source": "de", "target": "en"}),
    json.dumps({"q": " ".join(["Donaudampfschifffahrtsgesellschaftskapitän"] * 80),
                "source": "de", "target": "en"}),
    json.dumps({"q": "".join(random.Random(0).choice("abcdefghij") for _ in range(5000)),
                "source": "de", "target": "en"}),
    '{"q": "Ein Hund.", "source": "de", "target": "en", "beam_size": 1' + "0" * 5000 + "}",
    "[" * 100_000,
]


# Runs of non-space characters that the span patterns (nmt/text/passthrough.py) almost match:
# each made a backtracking scan quadratic (0.3 s for 5,000 characters, on the event loop).
REGEX_HOSTILE = ["a-" * 2499, "a." * 2499 + "@", "aB" * 2500, "!'" * 2500, "a@b" * 1666,
                 "1 \U0001F600 " * 1250, "www." * 1249 + "@", ". " * 2500]


class Phases:
    """Which phase a normal request started in, and what happened to it."""

    def __init__(self):
        self.name = "warm-up"
        self.results: dict[str, list[tuple[float, int | str]]] = {}
        self.health: dict[str, list[float]] = {}

    def record(self, phase: str, seconds: float, status) -> None:
        self.results.setdefault(phase, []).append((seconds, status))

    def record_health(self, phase: str, seconds: float) -> None:
        self.health.setdefault(phase, []).append(seconds)


async def raw_post(port: int, body: bytes, timeout: float = 60.0) -> int | str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        writer.close()
        return int(head.split(b" ", 2)[1])
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
        return type(error).__name__


async def normal_client(port: int, sentences: list[str], phases: Phases, stop: asyncio.Event,
                        source: str):
    connection, at = Connection(f"http://127.0.0.1:{port}", source), 0
    while not stop.is_set():
        text, at = sentences[at % len(sentences)], at + 1
        phase, start = phases.name, time.perf_counter()
        try:
            status = await asyncio.wait_for(connection.post(
                "/translate", {"q": text, "source": "de", "target": "en"}), 60)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            status = type(error).__name__
            connection.close()
        phases.record(phase, time.perf_counter() - start, status)
    connection.close()


async def health_prober(port: int, phases: Phases, stop: asyncio.Event) -> None:
    """``GET /health`` every 50 ms: how long the event loop keeps a trivial request waiting."""
    while not stop.is_set():
        phase, start = phases.name, time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await asyncio.wait_for(reader.read(), 30)
            writer.close()
        except (OSError, TimeoutError):
            pass
        phases.record_health(phase, time.perf_counter() - start)
        await asyncio.sleep(0.05)


async def probe_delay(port: int) -> float:
    """Seconds until a lone normal request is answered."""
    start = time.perf_counter()
    await raw_post(port, json.dumps({"q": "Ein Hund.", "source": "de", "target": "en"}).encode())
    return round(time.perf_counter() - start, 2)


def big_request(sentences: list[str], texts: int, beam: int, **extra) -> bytes:
    text = " ".join(sentences[:40])[:4900]
    return json.dumps({"q": [text] * texts, "source": "de", "target": "en", "beam_size": beam,
                       **extra}).encode()


async def abandon(port: int, body: bytes, after: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await asyncio.sleep(after)
    writer.close()


async def stall(port: int, count: int, seconds: float) -> dict:
    """Connections that send half a request and stop; how many the server closed itself."""
    streams = []
    for i in range(count):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            break
        writer.write(b"POST /translate HTTP/1.1\r\nHost: x\r\n" if i % 2 else
                     b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"q\":")
        streams.append((reader, writer))
    await asyncio.sleep(seconds)
    closed = 0
    for reader, writer in streams:
        try:
            data = await asyncio.wait_for(reader.read(1 << 16), 0.05)
            closed += data == b"" or data.startswith(b"HTTP/1.1 408")
        except (TimeoutError, OSError):
            pass
        writer.close()
    return {"opened": len(streams), "closed_by_server": closed}


async def run_phases(port: int, server_pid: int, sentences: list[str], clients: int,
                     seconds: float) -> dict:
    phases, stop = Phases(), asyncio.Event()
    # each normal client from a loopback address of its own: rate limits are per address
    workers = [asyncio.ensure_future(normal_client(port, sentences[i::clients], phases, stop,
                                                   f"127.0.0.{10 + i}"))
               for i in range(clients)]
    workers.append(asyncio.ensure_future(health_prober(port, phases, stop)))
    await asyncio.sleep(3)
    extra: dict[str, dict] = {}

    async def during(name: str, abuse) -> None:
        phases.name = name
        extra[name] = await abuse() or {}
        remaining = seconds - (time.perf_counter() - started[0])
        if remaining > 0:
            await asyncio.sleep(remaining)

    started = [0.0]

    async def poison():
        statuses = []
        while time.perf_counter() - started[0] < seconds:
            statuses.append(await raw_post(port, POISON[len(statuses) % len(POISON)].encode()))
            await asyncio.sleep(0.2)
        return {"statuses": sorted({str(s) for s in statuses}), "sent": len(statuses)}

    async def greedy():  # one client (one address) sending as fast as 16 connections go
        statuses: dict[str, int] = {}

        async def loop():
            connection = Connection(f"http://127.0.0.1:{port}", "127.0.0.200")
            while time.perf_counter() - started[0] < seconds:
                try:
                    status = str(await asyncio.wait_for(connection.post(
                        "/translate", {"q": "Ein Hund.", "source": "de", "target": "en"}), 30))
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                    status = type(error).__name__
                    connection.close()
                statuses[status] = statuses.get(status, 0) + 1
            connection.close()

        await asyncio.gather(*(loop() for _ in range(16)))
        return {"statuses": statuses}

    async def regex_hostile():
        statuses = []
        while time.perf_counter() - started[0] < seconds:
            text = REGEX_HOSTILE[len(statuses) % len(REGEX_HOSTILE)]
            body = json.dumps({"q": [text] * 64, "source": "de", "target": "en"}).encode()
            statuses.append(await raw_post(port, body))
        return {"statuses": sorted({str(s) for s in statuses}), "sent": len(statuses)}

    # A text of about 1,100 subwords: three of them at beam 4 are just within NMT_WORK_LIMIT.
    # Measured alone at beam 4 (int8 C decoding step): three texts 0.5 s, two 0.2 s; with
    # attention one text 0.4 s, three 0.95 s, two requests of three 1.5 s.
    async def oversized():
        return {"statuses": [await raw_post(port, big_request(sentences, 64, 8)),
                             await raw_post(port, big_request(sentences, 5, 8)),
                             await raw_post(port, big_request(sentences, 2, 4))]}

    async def abandoned():
        await abandon(port, big_request(sentences, 3, 4), after=0.5)
        return {"next_normal_request_s": await probe_delay(port)}

    async def timed_out():  # two together, under load, outlast the 1.5 s timeout
        statuses = await asyncio.gather(*(raw_post(port, big_request(sentences, 3, 4,
                                                                     attention=True))
                                          for _ in range(2)))
        return {"statuses": sorted(statuses, key=str),
                "next_normal_request_s": await probe_delay(port)}

    async def attention():  # one text at a time: within the timeout
        body = big_request(sentences, 1, 4, attention=True)
        return {"statuses": [await raw_post(port, body) for _ in range(2)]}

    async def stalled():
        return await stall(port, 300, min(seconds, 12))

    async def killed():
        children = [p for p in process_tree(server_pid) if p != server_pid]
        if children:
            os.kill(children[0], signal.SIGKILL)
        return {"killed_pid": children[0] if children else None}

    for name, abuse in (("baseline", lambda: asyncio.sleep(0)), ("poison", poison),
                        ("regex-hostile", regex_hostile), ("greedy-client", greedy),
                        ("oversized", oversized), ("abandoned", abandoned),
                        ("timed-out", timed_out), ("attention", attention),
                        ("stalled", stalled), ("worker-killed", killed)):
        started[0] = time.perf_counter()
        await during(name, abuse)
    stop.set()
    await asyncio.gather(*workers)
    return summarise(phases, extra)


def summarise(phases: Phases, extra: dict) -> dict:
    out = {}
    for name, rows in phases.results.items():
        latencies = sorted(s for s, _ in rows)
        failures = [str(status) for _, status in rows if status != 200]

        def pct(q):
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

        health = sorted(phases.health.get(name, [0.0]))
        out[name] = {"normal_requests": len(rows), "normal_failures": len(failures),
                     "failure_kinds": sorted(set(failures)),
                     "latency_ms": {"p50": pct(0.5), "p95": pct(0.95)},
                     "health_ms": {"p50": round(health[len(health) // 2] * 1000, 1),
                                   "p99": round(health[min(len(health) - 1,
                                                           int(0.99 * len(health)))] * 1000, 1),
                                   "max": round(health[-1] * 1000, 1)},
                     **extra.get(name, {})}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--phase-seconds", type=float, default=10.0)
    parser.add_argument("--data", default="data/multi30k")
    args = parser.parse_args()
    sentences = read_lines(split_file(args.data, "test_2016_flickr", "de"))
    port = free_port()
    env = {**os.environ, "NMT_REQUEST_TIMEOUT_S": "1.5", "NMT_HEADER_TIMEOUT_S": "5",
           "NMT_BODY_TIMEOUT_S": "5", "NMT_REQ_LIMIT": "720"}
    server = subprocess.Popen([sys.executable, "-m", "nmt", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            if asyncio.run(raw_post(port, b'{"q": "a", "source": "de", "target": "en"}', 5)) == 200:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the server did not start")
        result = asyncio.run(run_phases(port, server.pid, sentences, args.clients,
                                        args.phase_seconds))
    finally:
        stop_server(server)
    log = server.stderr.read().decode(errors="replace")
    result = {"benchmark": "faults", "clients": args.clients,
              "phase_seconds": args.phase_seconds, "phases": result,
              "server_log_lines": log.count("\n"), "server_500s": log.count('" 500'),
              "server_log_tail": log.splitlines()[-15:]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
