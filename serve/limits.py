"""Per-client rate limits, as LibreTranslate's ``--req-limit``: ``NMT_REQ_LIMIT`` requests a
minute for each client (its API key, else its address), so that one client cannot take the
whole queue from everyone else. Over it: 429 with ``Retry-After``.

A token bucket per client: full at ``per_minute`` requests, refilled at ``per_minute / 60`` a
second, one taken per request; a burst of a minute's budget is allowed, a steady rate above it
is not. At most ``max_clients`` buckets are kept (the least recently seen dropped first: a
dropped client starts again full), so memory is bounded whoever calls.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_minute: int, max_clients: int = 100_000):
        self.per_minute, self.max_clients = per_minute, max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, client: str, now: float | None = None) -> float:
        """0.0 when ``client`` may go on (its request is counted), else the seconds until it
        may (not counted)."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60
        tokens, last = self.buckets.pop(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        self.buckets[client] = (tokens - 1 if wait == 0.0 else tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


def client_of(request, api_key: str | None) -> str:
    """Whose budget a request spends: its API key's, else its address's."""
    if api_key:
        return f"key:{api_key}"
    return f"address:{request.client.host if request.client else '?'}"
