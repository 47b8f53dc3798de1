"""Routes: /translate, /languages, /health, /metrics, and the page at /.

Bodies are parsed here rather than by FastAPI's validation so that every malformed request (bad
JSON, invalid UTF-8, wrong types, over-large bodies) gets LibreTranslate's ``{"error": ...}`` with
a 4xx status, never a 422 in FastAPI's own shape or a 500.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from nmt.text.pieces import join_translations
from nmt.text.sentences import split_sentences
from serve.batcher import Batcher, QueueFull
from serve.registry import Registry
from serve.schemas import ErrorResponse, Language, TranslateRequest, TranslateResponse
from serve.settings import Settings
from serve.workers import WorkerDied

router = APIRouter()


def quoted(value: str, most: int = 40) -> str:
    """What the client sent, quoted in an error: a short prefix, never the whole of it."""
    return repr(value if len(value) <= most else value[:most] + "...")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        self.status, self.message, self.headers = status, message, headers


# Dependencies are coroutines: FastAPI runs a plain function in a thread of its pool, three
# thread hand-offs per request for reading an attribute.
async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


RegistryDep = Annotated[Registry, Depends(get_registry)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]

ERRORS = {code: {"model": ErrorResponse} for code in (400, 403, 408, 413, 422, 503, 504)}


async def read_body(request: Request, limit: int, stall_timeout: float,
                    deadline: float = 60.0) -> bytes:
    """The body, refused (413) past ``limit`` bytes, and (408) when it stalls ``stall_timeout``
    seconds or has not all arrived within ``deadline`` seconds."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over the limit of {limit} bytes")
    body = bytearray()
    chunks = request.stream().__aiter__()
    ends = asyncio.get_running_loop().time() + deadline
    while True:
        left = ends - asyncio.get_running_loop().time()
        if left <= 0:
            raise ApiError(408, f"the request body took longer than {deadline} s")
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), min(stall_timeout, left))
        except StopAsyncIteration:
            return bytes(body)
        except ClientDisconnect:  # nobody to answer; the status is for the access log only
            raise ApiError(499, "the client closed the connection") from None
        except TimeoutError:
            if asyncio.get_running_loop().time() >= ends:
                raise ApiError(408, f"the request body took longer than {deadline} s") from None
            raise ApiError(408, f"the request body stalled for {stall_timeout} s") from None
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body over the limit of {limit} bytes")


async def parse_request(request: Request, limit: int, stall_timeout: float = 10.0,
                        deadline: float = 60.0) -> TranslateRequest:
    body = await read_body(request, limit, stall_timeout, deadline)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        from starlette.datastructures import Headers
        from starlette.formparsers import FormParser, MultiPartParser

        async def stream():
            yield body
            yield b""

        headers = Headers(raw=request.scope["headers"])
        parser_class = FormParser if content_type.startswith("application") else MultiPartParser
        try:
            form = await parser_class(headers, stream()).parse()
        except Exception:
            raise ApiError(400, "malformed form body") from None
        raw: dict = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise ApiError(400, f"field {quoted(key)} must be text, not a file")
            raw.setdefault(key, []).append(value)
        payload = {k: v[0] if len(v) == 1 else v for k, v in raw.items()}
        for key in ("alternatives", "beam_size"):  # forms carry numbers as text
            if isinstance(payload.get(key), str) and payload[key].strip().lstrip("-").isdigit():
                payload[key] = int(payload[key])
        if isinstance(payload.get("attention"), str):
            payload["attention"] = payload["attention"].lower() in ("1", "true", "yes", "on")
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ApiError(400, f"request body is not valid UTF-8 ({error.reason} at byte "
                                f"{error.start})") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise ApiError(400, f"malformed JSON: {error.msg} (line {error.lineno}, column "
                                f"{error.colno})") from None
        except RecursionError:
            raise ApiError(400, "malformed JSON: nested too deeply") from None
        except ValueError as error:  # e.g. a number of more than 4,300 digits
            raise ApiError(400, f"malformed JSON: {error}") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "the request body must be a JSON object")
    if "q" not in payload:
        raise ApiError(400, "missing parameter: q")
    try:
        return TranslateRequest.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, f"invalid parameter {where}: {first['msg']}") from None


def check_text(text: str, what: str) -> None:
    """Text the tokenizer can take: valid Unicode, so no lone surrogate (JSON's "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(400, f"{what} is not valid Unicode: a lone surrogate "
                            f"{ascii(text[error.start])} at character {error.start}") from None


def check_limits(req: TranslateRequest, settings: Settings) -> list[str]:
    texts = [req.q] if isinstance(req.q, str) else list(req.q)
    for name in ("source", "target", "model", "api_key", "format"):
        if getattr(req, name) is not None:
            check_text(getattr(req, name), name)
    if settings.keys() and req.api_key not in settings.keys():
        raise ApiError(403, "invalid or missing api_key")
    if len(texts) > settings.batch_limit:
        raise ApiError(413, f"too many texts: {len(texts)} (limit {settings.batch_limit})")
    for i, text in enumerate(texts):
        if len(text) > settings.char_limit:
            raise ApiError(413, f"text {i} has {len(text)} characters (limit {settings.char_limit})")
        check_text(text, f"text {i}")
    if req.format != "text":
        raise ApiError(400, f"format {quoted(req.format)} is not supported; use text")
    if req.source == "auto":
        raise ApiError(400, "source 'auto' is not supported yet: language detection does not "
                            "exist; give the source language")
    if req.alternatives > settings.max_alternatives:
        raise ApiError(400, f"alternatives must be at most {settings.max_alternatives}")
    if req.beam_size is not None and req.beam_size > settings.max_beam_size:
        raise ApiError(400, f"beam_size must be at most {settings.max_beam_size}")
    return texts


def prepare_request(translator, texts: list[str], beam_size: int, settings: Settings):
    """Each text split into sentences (``pieces``, to join the translations back), each sentence
    through the input pipeline once (``prepared``), and its subwords (``tokens``), once the
    request is known to be within its sentence and work limits."""
    pieces = [split_sentences(t) if t.strip() else [] for t in texts]
    sentences = [s for p in pieces for s, _ in p]
    if len(sentences) > settings.sentence_limit:
        raise ApiError(413, f"too many sentences: {len(sentences)} (limit "
                            f"{settings.sentence_limit} per request)")
    prepared = translator.prepare(sentences)
    return pieces, prepared, check_work(translator, prepared, beam_size, settings)


def check_work(translator, prepared: list, beam_size: int, settings: Settings) -> list[int]:
    """The subwords of each prepared sentence, once the request's work is known to be within
    bounds: decoding costs about beam size x source subwords (the output is at most a fixed
    multiple of the source), so that product is what a request may not exceed."""
    tokens = translator.source_lengths(prepared)
    work = sum(tokens) * beam_size
    if work > settings.work_limit:
        raise ApiError(413, f"too much work in one request: {sum(tokens)} subwords x beam size "
                            f"{beam_size} = {work} (limit {settings.work_limit}); send fewer or "
                            "shorter texts, or a smaller beam_size")
    return tokens


class ClientGone(Exception):
    pass


async def until_disconnected(request: Request, work, timeout: float):
    """``work``'s result, or TimeoutError after ``timeout`` s, or ClientGone when the client has
    closed its connection; either way ``work`` is cancelled and stops costing anything."""
    task = asyncio.ensure_future(work)

    async def watch():
        # The body has been read, so the next message is the disconnect: waiting for it costs
        # nothing, where polling ``is_disconnected()`` every 0.1 s took as much of the server's
        # CPU as the route itself. A client that pipelines its next request sends something
        # else first (which a middleware may refuse): then it is polled, once a second.
        try:
            if (await request.receive())["type"] == "http.disconnect":
                return
        except Exception:
            pass
        while not await request.is_disconnected():
            await asyncio.sleep(1.0)

    watcher = asyncio.ensure_future(watch())
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
    if watcher in done:
        raise ClientGone()
    raise TimeoutError()


@router.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True,
             responses=ERRORS, openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": TranslateRequest.model_json_schema()},
                 "application/x-www-form-urlencoded": {
                     "schema": TranslateRequest.model_json_schema()}}}})
async def translate(request: Request, registry: RegistryDep, batcher: BatcherDep,
                    settings: SettingsDep):
    """Translate a text or a list of texts (LibreTranslate's API)."""
    req = await parse_request(request, settings.body_limit, settings.body_timeout_s,
                              settings.body_deadline_s)
    texts = check_limits(req, settings)
    translator = registry.pick(req.source, req.target, req.model)
    if translator is None:
        what = f"model {quoted(req.model)} for " if req.model else ""
        pair = f"{req.source[:10]}-{req.target[:10]}"
        raise ApiError(400, f"no {what}{pair} model; served: {registry.served()} (see /languages)")
    n_best = req.alternatives + 1
    beam_size = max(req.beam_size or settings.beam_size, n_best)
    # The text work before the queue (splitting, preparing, counting) is linear in the text and
    # bounded by the limits above, and runs off the event loop, which never waits on text.
    pieces, prepared, tokens = await asyncio.to_thread(prepare_request, translator, texts,
                                                       beam_size, settings)
    sentences = [s for p in pieces for s, _ in p]
    results = []
    if sentences:
        try:
            results = await until_disconnected(
                request, batcher.submit(translator, prepared, beam_size, n_best, req.attention,
                                        tokens), settings.request_timeout_s)
        except QueueFull:
            raise ApiError(503, "the server is busy: too many sentences waiting; retry soon",
                           headers={"Retry-After": "1"}) from None
        except WorkerDied:
            raise ApiError(503, "a translation worker stopped; the server has started another: "
                           "retry", headers={"Retry-After": "1"}) from None
        except TimeoutError:
            raise ApiError(504, f"translation took longer than {settings.request_timeout_s} s") \
                from None
        except ClientGone:  # nobody to answer; the status is for the access log only
            raise ApiError(499, "the client closed the connection") from None
        except Exception as error:  # it failed alone (serve/batcher.py retried it alone)
            raise ApiError(422, f"this text could not be translated ({type(error).__name__}: "
                                f"{str(error)[:200]})") from None
    out, alternatives, attention, at = [], [], [], 0
    for p in pieces:
        part = results[at:at + len(p)]
        at += len(p)
        joined = join_translations(part, p)
        out.append(joined.text)
        alternatives.append([joined.alternatives[k][0] if k < len(joined.alternatives)
                             else joined.text for k in range(req.alternatives)])
        if req.attention:  # computed in the worker, over the ids it decoded
            attention.append([{"source_tokens": r.alignment.src_tokens,
                               "target_tokens": r.alignment.tgt_tokens,
                               "weights": [[round(w, 4) for w in row] for row in r.alignment.weights]}
                              for r in part if r.alignment is not None])
    single = isinstance(req.q, str)
    response = {"translatedText": out[0] if single else out, "model": translator.name}
    if req.alternatives:
        response["alternatives"] = alternatives[0] if single else alternatives
    if req.attention:
        response["attention"] = attention[0] if single else attention
    return JSONResponse(response)


@router.get("/languages", response_model=list[Language])
async def languages(registry: RegistryDep):
    """The languages served, each with the targets it can be translated to."""
    return registry.languages()


@router.get("/health")
async def health(registry: RegistryDep):
    return {"status": "ok", "models": sorted(registry.translators)}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep):
    """Prometheus metrics; behind the API key when keys are set (``?api_key=`` or a bearer
    token), unless NMT_METRICS_PUBLIC is true."""
    if settings.keys() and not settings.metrics_public:
        given = request.query_params.get("api_key") or \
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given not in settings.keys():
            raise ApiError(403, "invalid or missing api_key")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
async def index(request: Request):
    return HTMLResponse(request.app.state.index_html)
