"""Load test of the translation service on 127.0.0.1: N concurrent clients, M requests each,
single sentences from test_2016_flickr. Prints JSON: throughput, latency percentiles, errors,
observed batch sizes (from /metrics), and the server's resident memory when it started it.

    python bench/load.py --clients 32 --requests 8            # starts `nmt serve` itself
    python bench/load.py --url http://127.0.0.1:5000 ...       # or targets a running server

To measure another version of the code, run that checkout's own bench/load.py from inside it:
the server starts as ``python -m nmt serve``, which imports the package from the working
directory, whatever PYTHONPATH says.

Bounded by design: clients x requests requests in all, each with a timeout, then it stops.
Each client keeps one HTTP/1.1 connection (``Connection``), so the generator takes little of
the CPU it shares with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt.data.corpus import read_lines, split_file  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: list[str] | None = None, env: dict | None = None
                 ) -> tuple[subprocess.Popen, str]:
    """``nmt serve`` on a free local port, once /health answers: the process and its URL."""
    port = free_port()
    command = [sys.executable, "-m", "nmt", "serve", "--port", str(port)]
    for model in models or []:
        command += ["--model", model]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(server)
    raise SystemExit("the server did not start: " + server.stderr.read().decode()[-2000:])


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM (the server drains what is in flight), then SIGKILL after a minute."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()


def process_tree(pid: int) -> list[int]:
    """The server and its worker processes (children, recursively)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += parents.get(tree[-1], [])
    return tree


def memory_mb(pid: int) -> dict:
    """Resident memory of the server's processes: RSS summed (counts the pages workers share with
    the server once per process: an upper bound) and PSS summed (each shared page split among
    the processes that map it: what the server occupies)."""
    total = {"rss": 0, "pss": 0, "processes": 0}
    for member in process_tree(pid):
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        for key, name in (("rss", "Rss"), ("pss", "Pss")):
            match = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
            total[key] += int(match.group(1)) if match else 0
        total["processes"] += 1
    return {"rss_sum": round(total["rss"] / 1024, 1), "pss_sum": round(total["pss"] / 1024, 1),
            "processes": total["processes"]}


def batch_stats(metrics: str) -> dict:
    total = re.search(r"^nmt_batch_sentences_sum ([\d.e+]+)", metrics, re.M)
    count = re.search(r"^nmt_batch_sentences_count ([\d.e+]+)", metrics, re.M)
    buckets = {m.group(1): float(m.group(2)) for m in
               re.finditer(r'^nmt_batch_sentences_bucket\{le="([^"]+)"\} ([\d.e+]+)', metrics, re.M)}
    if not total or not count or float(count.group(1)) == 0:
        return {}
    busy = re.search(r"^nmt_batch_seconds_sum ([\d.e+]+)", metrics, re.M)
    return {"batches": int(float(count.group(1))),
            "mean_sentences": round(float(total.group(1)) / float(count.group(1)), 2),
            "model_busy_seconds": round(float(busy.group(1)), 2) if busy else None,
            "cumulative_buckets": buckets}


class Connection:
    """One keep-alive HTTP/1.1 connection with just enough protocol for POST /translate.

    The load generator shares the 2 cores with the server it measures, so it has to be cheap:
    httpx spent about 2.5 ms of CPU per request here, twice the server's own HTTP work (1.2 ms,
    measured against a stub model), and every such millisecond is taken from the model.
    """

    def __init__(self, url: str, source: str | None = None):
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port or 80)
        self.local = (source, 0) if source else None  # the client's own loopback address
        self.reader = self.writer = None

    async def post(self, path: str, payload: dict) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port,
                                                                     local_addr=self.local)
        body = json.dumps(payload).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s"
                          % (path.encode(), self.host.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        if match is None:
            raise ConnectionError("response without Content-Length")
        await self.reader.readexactly(int(match.group(1)))
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def client(url: str, sentences: list[str], beam: int, latencies: list,
                 errors: list) -> None:
    connection = Connection(url)
    for text in sentences:
        start = time.perf_counter()
        try:
            status = await asyncio.wait_for(connection.post(
                "/translate", {"q": text, "source": "de", "target": "en", "beam_size": beam}), 60)
            if status != 200:
                errors.append(status)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            errors.append(type(error).__name__)
            connection.close()
        latencies.append(time.perf_counter() - start)
    connection.close()


async def load(url: str, sentences: list[str], clients: int, requests: int, beam: int) -> dict:
    latencies: list[float] = []
    errors: list = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await http.post(url + "/translate", json={"q": sentences[0], "source": "de", "target": "en"})
        before = batch_stats((await http.get(url + "/metrics")).text)
        start = time.perf_counter()
        await asyncio.gather(*(client(url, sentences[c * requests:(c + 1) * requests], beam,
                                      latencies, errors) for c in range(clients)))
        seconds = time.perf_counter() - start
        after = batch_stats((await http.get(url + "/metrics")).text)
    latencies.sort()

    def pct(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

    batches = after.get("batches", 0) - before.get("batches", 0)
    return {"clients": clients, "requests": len(latencies), "beam": beam,
            "seconds": round(seconds, 2), "sentences_per_s": round(len(latencies) / seconds, 1),
            "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99)},
            "errors": len(errors), "error_kinds": sorted({str(e) for e in errors}),
            "batches": batches,
            "mean_batch_sentences": round(len(latencies) / batches, 2) if batches else None,
            # batch-seconds per wall second, summed over the batch workers (2.0: two always busy)
            "model_busy_fraction": round((after["model_busy_seconds"] - before["model_busy_seconds"])
                                         / seconds, 2) if after.get("model_busy_seconds") else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running server; default: start `nmt serve` here")
    parser.add_argument("--model", action="append", help="models for the server it starts")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--data", default="data/multi30k")
    args = parser.parse_args()
    sentences = read_lines(split_file(args.data, "test_2016_flickr", "de"))
    needed = args.clients * args.requests
    sentences = (sentences * (needed // len(sentences) + 1))[:needed]
    server = None
    url = args.url
    try:
        if url is None:
            server, url = start_server(args.model)
        result = asyncio.run(load(url, sentences, args.clients, args.requests, args.beam))
        result["benchmark"] = "load"
        if server is not None:
            result["server_memory_mb"] = memory_mb(server.pid)
            result["models"] = httpx.get(url + "/health").json()["models"]
        result["cpu_count"] = os.cpu_count()
        print(json.dumps(result, indent=2))
    finally:
        if server is not None:
            stop_server(server)


if __name__ == "__main__":
    main()
