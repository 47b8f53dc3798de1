"""``nmt serve``: the app under uvicorn."""

from __future__ import annotations

import sys


def run(models: list[str] | None = None, host: str | None = None, port: int | None = None,
        quantize: str | None = None) -> None:
    import uvicorn

    from serve.app import create_app, load_registry
    from serve.settings import load_settings

    overrides = {}
    if models:
        overrides["models"] = ",".join(models)
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if quantize:
        overrides["quantize"] = quantize
    settings = load_settings(**overrides)
    sock = listen(settings.host, settings.port)  # a busy port fails here, before any claim
    registry = load_registry(settings)  # a bad model directory fails here, before serving
    names = ", ".join(f"{t.name} ({', '.join(f'{s}-{g}' for s, g in t.pairs)})"
                      for t in registry.translators.values())
    print(f"serving {names} on http://{settings.host}:{settings.port}/ (API docs at /docs)",
          file=sys.stderr, flush=True)
    from serve.connections import (
        StallTimeoutH11Protocol,
        quiet_descriptor_errors,
        raise_open_file_limit,
    )

    raise_open_file_limit()
    StallTimeoutH11Protocol.header_timeout = settings.header_timeout_s
    StallTimeoutH11Protocol.write_timeout = settings.write_timeout_s
    config = uvicorn.Config(create_app(settings, registry), log_level="info",
                            timeout_graceful_shutdown=30, timeout_keep_alive=5,
                            http=StallTimeoutH11Protocol)
    server = _draining_server_class()(config)
    quiet_descriptor_errors()
    server.run(sockets=[sock])


def listen(host: str, port: int):
    """The server's socket, bound before anything else happens."""
    import socket

    from nmt.core.errors import NmtError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise NmtError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def _draining_server_class():
    import contextlib
    import signal

    import uvicorn

    class DrainingServer(uvicorn.Server):
        """SIGHUP (a closed terminal, a supervisor's reload) drains like SIGTERM: the requests in
        flight finish, then the process exits. uvicorn itself handles only SIGINT and SIGTERM,
        and the default SIGHUP ended the server at once. (No reload: models load at start.)"""

        @contextlib.contextmanager
        def capture_signals(self):
            previous = signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                with super().capture_signals():
                    yield
            finally:
                signal.signal(signal.SIGHUP, previous)

    return DrainingServer
