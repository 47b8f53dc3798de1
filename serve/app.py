"""The FastAPI application factory: models loaded once in the lifespan, errors as JSON."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from nmt.core.memory import keep_freed_memory
from serve.batcher import Batcher
from serve.files import Results
from serve.files import router as files_router
from serve.limits import RateLimiter
from serve.registry import Registry, find_model_dirs
from serve.routes import ApiError, router
from serve.settings import Settings, get_settings
from serve.workers import ProcessWorkers, ThreadWorkers

log = logging.getLogger("nmt.serve")
REQUESTS = Counter("nmt_http_requests", "HTTP requests", ["route", "status"])
LATENCY = Histogram("nmt_http_request_seconds", "HTTP request latency", ["route", "status"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def load_registry(settings: Settings) -> Registry:
    paths = settings.model_paths() or [str(p) for p in find_model_dirs(settings.models_dir)]
    if not paths and settings.models_dir == "models":  # run from elsewhere: the repo's own models
        paths = [str(p) for p in find_model_dirs(Path(__file__).resolve().parent.parent / "models")]
    if not paths:
        from nmt.core.errors import NmtError

        raise NmtError(f"no models to serve: none under {settings.models_dir}/ and NMT_MODELS is empty")
    # With worker processes the server itself stays on one torch thread (serve/workers.py).
    threads = 1 if settings.processes else settings.torch_threads()
    return Registry.load(paths, settings.defaults(), threads=threads, quantize=settings.quantize)


class Measure:
    """Counts and times every request by route and status, 500s included, and answers a failure
    no handler took with a JSON 500. A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware``
    (``@app.middleware``) runs each request in task groups of its own and wraps every ``receive``,
    which cost the server about a third of its CPU per request under load."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), None

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if status is None:  # nothing sent yet: the client gets JSON
                await JSONResponse({"error": "internal server error"}, status_code=500)(
                    scope, receive, send_noting_status)
            status = 500
        route = scope.get("route")
        path = route.path if route is not None else "unmatched"
        REQUESTS.labels(path, str(status)).inc()
        LATENCY.labels(path, str(status)).observe(time.perf_counter() - start)


class RefuseAmbiguousLength:
    """RFC 9112 6.1: a request with both Content-Length and Transfer-Encoding may be smuggling
    a second one in its body; it is refused (400) and its connection closed, so nothing after
    it is read as a request. Inside ``Measure``, which counts it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        names = {name for name, _ in scope.get("headers", ())} if scope["type"] == "http" else ()
        if b"content-length" in names and b"transfer-encoding" in names:
            response = JSONResponse({"error": "both Content-Length and Transfer-Encoding: "
                                              "ambiguous request length"}, status_code=400,
                                    headers={"Connection": "close"})
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    # Before the models allocate (nmt/core/memory.py), however the app is started (``nmt serve``,
    # ``uvicorn --factory``); the forked workers inherit it. Not on import: importing has no effects.
    keep_freed_memory()
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.registry = registry or await asyncio.to_thread(load_registry, settings)
        # What start-up made (models, vocabularies, libraries) lives as long as the server: out
        # of the collector's reach, a full collection no longer walks it while requests wait,
        # and the forked workers do not copy the pages it would have touched.
        gc.collect()
        gc.freeze()
        workers = (ProcessWorkers(app.state.registry.translators, settings.batch_workers(),
                                  settings.torch_threads())
                   if settings.processes else ThreadWorkers())
        workers.start()
        app.state.batcher = Batcher(settings.queue_size, settings.max_wait_ms / 1000,
                                    settings.batch_max_sentences, settings.batch_workers(),
                                    workers.translate, settings.heavy_tokens)
        app.state.batcher.start()
        yield
        await app.state.batcher.stop()  # requests in flight finish before the process exits
        workers.close()
        if not settings.files_dir:
            app.state.results.close()

    # /docs and /redoc from assets the fastapi-offline package ships: they work with no internet.
    app = FastAPIOffline(title="nmt", version=__import__("nmt").__version__, lifespan=lifespan,
                         redirect_slashes=False,  # a redirect would be built from the Host header
                         description="Neural machine translation, LibreTranslate-compatible.")
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.req_limit)
    app.state.results = Results(settings.files_dir, settings.files_keep, settings.files_ttl_s)
    if settings.origins():
        app.add_middleware(CORSMiddleware, allow_origins=settings.origins(),
                           allow_methods=["GET", "POST"], allow_headers=["*"])

    app.add_middleware(RefuseAmbiguousLength)
    app.add_middleware(Measure)  # added last: outermost, so it counts what the others refuse

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        # A message may quote the request: never let its text break the response's encoding.
        message = error.message.encode("utf-8", "backslashreplace").decode("utf-8")
        return JSONResponse({"error": message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return JSONResponse({"error": f"invalid request: {where}: {first.get('msg', 'invalid')}"},
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    app.include_router(router)
    app.include_router(files_router)
    static = Path(__file__).parent / "static"
    app.state.index_html = (static / "index.html").read_text(encoding="utf-8")
    return app
