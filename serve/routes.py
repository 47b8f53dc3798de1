"""Routes: /translate, /languages, /health, /metrics, and the page at /.

Bodies are parsed here rather than by FastAPI's validation so that every malformed request (bad
JSON, invalid UTF-8, wrong types, over-large bodies) gets LibreTranslate's ``{"error": ...}`` with
a 4xx status, never a 422 in FastAPI's own shape or a 500.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from nmt.data.corpus import LANGUAGE_NAMES
from nmt.text.pieces import join_translations
from nmt.text.sentences import split_sentences
from serve.batcher import Batcher, QueueFull
from serve.documents import FORMATS
from serve.html import translate_html
from serve.limits import client_of
from serve.registry import Registry
from serve.schemas import (
    Detection,
    DetectRequest,
    ErrorResponse,
    Language,
    TranslateRequest,
    TranslateResponse,
)
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

ERRORS = {code: {"model": ErrorResponse} for code in (400, 403, 408, 413, 422, 429, 503, 504)}


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
                        deadline: float = 60.0, schema=TranslateRequest):
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
        for key in ("attention", "alignment"):  # and booleans
            if isinstance(payload.get(key), str):
                payload[key] = payload[key].lower() in ("1", "true", "yes", "on")
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
        return schema.model_validate(payload)
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


def check_client(request: Request, api_key: str | None, settings: Settings) -> None:
    """A valid key where keys are set (403), and the client within its rate (429)."""
    if api_key is not None:
        check_text(api_key, "api_key")
    if settings.keys() and api_key not in settings.keys():
        raise ApiError(403, "invalid or missing api_key")
    wait = request.app.state.rate_limiter.wait(client_of(request, api_key))
    if wait > 0:
        raise ApiError(429, f"too many requests: the limit is {settings.req_limit} a minute",
                       headers={"Retry-After": str(math.ceil(wait))})


def check_texts(req, settings: Settings, request: Request) -> list[str]:
    """The request's texts, once its client passes ``check_client`` and their count and size
    are within the limits."""
    texts = [req.q] if isinstance(req.q, str) else list(req.q)
    check_client(request, req.api_key, settings)
    if len(texts) > settings.batch_limit:
        raise ApiError(413, f"too many texts: {len(texts)} (limit {settings.batch_limit})")
    for i, text in enumerate(texts):
        if len(text) > settings.char_limit:
            raise ApiError(413, f"text {i} has {len(text)} characters (limit {settings.char_limit})")
        check_text(text, f"text {i}")
    return texts


def check_limits(req: TranslateRequest, settings: Settings, request: Request) -> list[str]:
    for name in ("source", "target", "model", "format"):
        if getattr(req, name) is not None:
            check_text(getattr(req, name), name)
    texts = check_texts(req, settings, request)
    if req.format not in ("text", "html"):
        raise ApiError(400, f"format {quoted(req.format)} is not supported; use text or html")
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
    """Translate a text or a list of texts (LibreTranslate's API); ``"source": "auto"`` detects
    each text's language and answers it as ``detectedLanguage``."""
    req = await parse_request(request, settings.body_limit, settings.body_timeout_s,
                              settings.body_deadline_s)
    texts = check_limits(req, settings, request)
    n_best = req.alternatives + 1
    beam_size = max(req.beam_size or settings.beam_size, n_best)
    detected = None
    if req.source == "auto":
        detected = await asyncio.to_thread(lambda: [registry.detector.best(t) for t in texts])
    sources = [d.language for d in detected] if detected else [req.source] * len(texts)
    groups: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        groups.setdefault(source, []).append(i)
    translators = {source: pick(registry, source, req.target, req.model, detected is not None)
                   for source in groups}
    extras = frozenset(name for name, wanted in (("attention", req.attention),
                                                 ("links", req.alignment)) if wanted)
    translate = translate_texts if req.format == "text" else translate_markup
    done = await asyncio.gather(*(
        translate(request, batcher, settings, translators[source], [texts[i] for i in at],
                  beam_size, n_best, extras) for source, at in groups.items()))
    answers: list = [None] * len(texts)
    for at, group in zip(groups.values(), done):
        for i, answer in zip(at, group):
            answers[i] = answer
    return JSONResponse(response_body(req, answers, translators, detected))


def pick(registry: Registry, source: str, target: str, model: str | None, detected: bool):
    """The translator for ``source`` -> ``target`` (of ``model`` if given); None where a
    detected source is the target (the text is its own translation, as LibreTranslate
    answers); else a 400."""
    if detected and source == target:
        return None
    translator = registry.pick(source, target, model)
    if translator is None:
        what = f"model {quoted(model)} for " if model else ""
        if detected:
            raise ApiError(400, f"the detected language {source!r} cannot be translated into "
                                f"{target[:10]!r} here; served: {registry.served()}")
        pair = f"{source[:10]}-{target[:10]}"
        raise ApiError(400, f"no {what}{pair} model; served: {registry.served()} (see /languages)")
    return translator


async def translate_texts(request: Request, batcher: Batcher, settings: Settings, translator,
                          texts: list[str], beam_size: int, n_best: int, extras: frozenset):
    """Each text's (translation, alternatives, attention, word links), through the batcher."""
    if translator is None:  # the text is its own translation, word for word
        return [(text, [text] * (n_best - 1), [], [[i, i] for i in range(len(text.split()))])
                for text in texts]
    # The text work before the queue (splitting, preparing, counting) is linear in the text and
    # bounded by the limits above, and runs off the event loop, which never waits on text.
    pieces, prepared, tokens = await asyncio.to_thread(prepare_request, translator, texts,
                                                       beam_size, settings)
    results = await translate_prepared(request, batcher, settings, translator, prepared, tokens,
                                       beam_size, n_best, extras) if prepared else []
    answers, at = [], 0
    for p in pieces:
        part = results[at:at + len(p)]
        at += len(p)
        joined = join_translations(part, p)
        answers.append((joined.text, [joined.alternatives[k][0] if k < len(joined.alternatives)
                                      else joined.text for k in range(n_best - 1)],
                        [{"source_tokens": r.alignment.src_tokens,
                          "target_tokens": r.alignment.tgt_tokens,
                          "weights": [[round(w, 4) for w in row] for row in r.alignment.weights]}
                         for r in part if r.alignment is not None],
                        [list(link) for link in joined.links or ()]))
    return answers


async def translate_markup(request: Request, batcher: Batcher, settings: Settings, translator,
                           texts: list[str], beam_size: int, n_best: int, extras: frozenset):
    """HTML texts translated, tags kept (serve/html.py); alternatives and attention are not
    given for HTML."""
    if translator is None:
        return [(text, [], [], []) for text in texts]
    return await translate_html(
        texts, lambda sources: translate_texts(request, batcher, settings, translator, sources,
                                               beam_size, 1, frozenset({"links"})),
        lambda message: ApiError(400, f"format html: {message}"))


async def translate_prepared(request, batcher, settings, translator, prepared, tokens,
                             beam_size, n_best, extras):
    """The batcher's translations of prepared sentences, its failures as the API's errors."""
    try:
        return await until_disconnected(
            request, batcher.submit(translator, prepared, beam_size, n_best, extras, tokens),
            settings.request_timeout_s)
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


def response_body(req: TranslateRequest, answers: list, translators: dict, detected) -> dict:
    """LibreTranslate's answer: one value per text, or the value itself for a lone text."""
    single = isinstance(req.q, str)
    shape = (lambda values: values[0]) if single else (lambda values: values)
    models = sorted({t.name for t in translators.values() if t is not None})
    response: dict = {"translatedText": shape([text for text, *_ in answers])}
    if models:
        response["model"] = models[0] if len(models) == 1 else models
    if req.alternatives:
        response["alternatives"] = shape([answer[1] for answer in answers])
    if req.attention:
        response["attention"] = shape([answer[2] for answer in answers])
    if req.alignment:
        response["alignment"] = shape([answer[3] for answer in answers])
    if detected is not None:
        response["detectedLanguage"] = shape([{"confidence": d.confidence, "language": d.language}
                                              for d in detected])
    return response


@router.post("/detect", response_model=list[Detection] | list[list[Detection]], responses=ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": DetectRequest.model_json_schema()},
                 "application/x-www-form-urlencoded": {
                     "schema": DetectRequest.model_json_schema()}}}})
async def detect(request: Request, registry: RegistryDep, settings: SettingsDep):
    """The language of a text (or of each of a list of texts), likeliest first, with a
    confidence from 0 to 100 (LibreTranslate's API)."""
    req = await parse_request(request, settings.body_limit, settings.body_timeout_s,
                              settings.body_deadline_s, schema=DetectRequest)
    texts = check_texts(req, settings, request)
    if isinstance(req.q, str) and not req.q.strip():
        raise ApiError(400, "Invalid request: missing q parameter")
    found = await asyncio.to_thread(lambda: [registry.detector.detect(t) for t in texts])
    answers = [[{"confidence": d.confidence, "language": d.language} for d in row] for row in found]
    return JSONResponse(answers[0] if isinstance(req.q, str) else answers)


@router.get("/frontend/settings")
async def frontend_settings(registry: RegistryDep, settings: SettingsDep):
    """What LibreTranslate's web front-end reads first."""
    codes = {lang["code"] for lang in registry.languages()}
    target = "en" if "en" in codes else min(codes, default="en")
    return {"charLimit": settings.char_limit, "frontendTimeout": 500,
            "apiKeys": bool(settings.keys()), "keyRequired": bool(settings.keys()),
            "suggestions": False, "filesTranslation": True,
            "supportedFilesFormat": list(FORMATS),
            "language": {"source": {"code": "auto", "name": "Auto Detect"},
                         "target": {"code": target, "name": LANGUAGE_NAMES.get(target, target)}}}


@router.post("/suggest", responses=ERRORS)
async def suggest():
    """Suggestions of better translations: disabled here, as on a LibreTranslate server
    started without --suggestions."""
    raise ApiError(403, "Suggestions are disabled on this server.")


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
