"""Connections that cannot hold the server: stalled clients are closed, and running out of file
descriptors costs refused connections and one log line a minute, not a flood of tracebacks.

uvicorn closes an idle keep-alive connection, but a connection that sends half its headers (or
nothing) and then stalls is kept forever: enough of them use up the process's file descriptors.
``StallTimeoutH11Protocol`` closes a connection whose request headers have not all arrived within
``NMT_HEADER_TIMEOUT_S``, and one whose client stops reading its response for
``NMT_WRITE_TIMEOUT_S``; a body that stalls or trickles is cut by the route
(``NMT_BODY_TIMEOUT_S``, ``NMT_BODY_DEADLINE_S``, 408).
"""

from __future__ import annotations

import logging
import resource
import time

from uvicorn.protocols.http.h11_impl import H11Protocol


class StallTimeoutH11Protocol(H11Protocol):
    header_timeout = 10.0  # set from Settings by serve/main.py
    write_timeout = 30.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.header_timer = self.loop.call_later(self.header_timeout, self.headers_too_slow)
        self.write_timer = None

    def pause_writing(self) -> None:
        """The client has stopped reading: its response waits in the send buffer. A client
        that does not read on within ``write_timeout`` is cut off."""
        super().pause_writing()
        if self.write_timer is None:
            # abort, not close: close would wait for the very buffer that is not draining
            self.write_timer = self.loop.call_later(self.write_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None

    def headers_too_slow(self) -> None:
        if self.cycle is None and not self.transport.is_closing():  # no request has begun
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.header_timer.cancel()
        if self.write_timer is not None:
            self.write_timer.cancel()
        super().connection_lost(exc)


def raise_open_file_limit() -> int:
    """The soft limit on open files raised to the hard one (often 1,024 against 1,048,576)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
        except (ValueError, OSError):
            pass
    return soft


class OncePerInterval(logging.Filter):
    """Lets one record about running out of descriptors through per ``interval`` seconds."""

    MARKERS = ("Too many open files", "out of system resource")

    def __init__(self, interval: float = 60.0):
        super().__init__()
        self.interval, self.last, self.dropped = interval, float("-inf"), 0

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        if not any(marker in text for marker in self.MARKERS):
            return True
        now = time.monotonic()
        if now - self.last < self.interval:
            self.dropped += 1
            return False
        self.last = now
        if self.dropped:
            record.msg = f"{record.getMessage()} ({self.dropped} more like it not logged)"
            record.args = ()
        record.exc_info, self.dropped = None, 0
        return True


def quiet_descriptor_errors() -> None:
    """The filter on the loggers that report accept() failures."""
    guard = OncePerInterval()
    for name in ("asyncio", "uvicorn.error", "uvicorn"):
        logging.getLogger(name).addFilter(guard)
