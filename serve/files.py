"""File translation, as LibreTranslate's API has it: ``POST /translate_file`` (multipart: ``file``,
``source``, ``target``, ``api_key``) answers ``{"translatedFileUrl": ".../download_file/NAME"}``,
and ``GET /download_file/NAME`` gives the file.

Results are kept in one folder for ``NMT_FILES_TTL_S`` seconds, at most ``NMT_FILES_KEEP`` of
them (the oldest go first); a name is served only if this server issued it and still holds it,
so no name reaches a file outside the folder.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from serve.documents import FORMATS, DocumentError, translate_document
from serve.routes import (
    ERRORS,
    ApiError,
    RegistryDep,
    SettingsDep,
    check_client,
    check_text,
    pick,
    quoted,
    translate_texts,
)

router = APIRouter()
_NAME = re.compile(r"[0-9a-f]{32}\.[\w.-]{1,100}")


class Results:
    """The translated files: names issued, where they lie, when they go."""

    def __init__(self, folder: str, keep: int, ttl: float):
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="nmt-files-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep, self.ttl = keep, ttl
        self.issued: dict[str, float] = {}  # name -> when it was written

    def add(self, original: str, data: bytes) -> str:
        self.expire()
        stem = re.sub(r"[^\w.-]", "_", Path(original).name)[-100:] or "file"
        name = f"{secrets.token_hex(16)}.{stem}"
        (self.folder / name).write_bytes(data)
        self.issued[name] = time.monotonic()
        return name

    def path(self, name: str) -> Path | None:
        self.expire()
        return self.folder / name if _NAME.fullmatch(name) and name in self.issued else None

    def expire(self) -> None:
        now = time.monotonic()
        for name in sorted(self.issued, key=self.issued.get):
            if now - self.issued[name] > self.ttl or len(self.issued) > self.keep:
                (self.folder / name).unlink(missing_ok=True)
                del self.issued[name]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@router.post("/translate_file", responses=ERRORS)
async def translate_file(request: Request, registry: RegistryDep, settings: SettingsDep):
    """Translate a file (.txt, .html, .srt, .docx, .odt), its structure kept; answers the URL
    to download the result from (LibreTranslate's API)."""
    form = await _form(request, settings)
    upload, source, target = form.get("file"), form.get("source"), form.get("target")
    if upload is None or isinstance(upload, str) or not source or not target:
        raise ApiError(400, "Invalid request: file, source and target are required")
    check_text(source, "source")
    check_text(target, "target")
    check_client(request, form.get("api_key") or None, settings)
    extension = Path(upload.filename or "").suffix.lower()
    if extension not in FORMATS:
        raise ApiError(400, f"file type {quoted(extension or upload.filename or '')} is not "
                            f"supported; supported: {', '.join(FORMATS)}")
    data = await upload.read()
    if source == "auto":
        raise ApiError(400, "give the file's source language; auto is for texts (/translate)")
    translator = pick(registry, source, target, None, detected=False)
    translated = await _translate(request, settings, translator, data, extension)
    name = request.app.state.results.add(upload.filename or f"file{extension}", translated)
    return JSONResponse({"translatedFileUrl": str(request.url_for("download_file", name=name))})


async def _form(request: Request, settings: SettingsDep):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.file_limit:
        raise ApiError(413, f"file over the limit of {settings.file_limit} bytes")
    try:
        return await request.form(max_part_size=settings.file_limit)
    except Exception:
        raise ApiError(400, "malformed multipart body") from None


async def _translate(request, settings, translator, data: bytes, extension: str) -> bytes:
    """The document translated through the batcher, a batch of texts at a time."""
    loop = asyncio.get_running_loop()
    batcher = request.app.state.batcher

    def translate(texts: list[str]) -> list[str]:
        if sum(len(t) for t in texts) > settings.file_char_limit:
            raise ApiError(413, f"the file holds over {settings.file_char_limit} characters of "
                                "text")
        out: list[str] = []
        for at in range(0, len(texts), settings.batch_limit):
            chunk = [t[:settings.char_limit] for t in texts[at:at + settings.batch_limit]]
            done = asyncio.run_coroutine_threadsafe(translate_texts(
                request, batcher, settings, translator, chunk, settings.beam_size, 1, frozenset()),
                loop)
            out += [text for text, *_ in done.result()]
        return out

    try:
        return await asyncio.to_thread(translate_document, data, extension, translate)
    except DocumentError as error:
        raise ApiError(400, str(error)) from None


@router.get("/download_file/{name}", name="download_file", responses=ERRORS)
async def download_file(request: Request, name: str):
    """A translated file, by the name ``/translate_file`` answered; 404 for any other."""
    path = request.app.state.results.path(name)
    if path is None or not path.is_file():
        raise ApiError(404, "no such file (results are kept for a limited time)")
    return FileResponse(path, filename=name.split(".", 1)[1])
