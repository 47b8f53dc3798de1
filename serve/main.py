"""``nmt serve``: the app under uvicorn."""

from __future__ import annotations

import sys


def run(models: list[str] | None = None, host: str | None = None, port: int | None = None,
        quantize: str | None = None) -> None:
    import uvicorn

    from serve.app import create_app, load_registry
    from serve.settings import Settings

    overrides = {}
    if models:
        overrides["models"] = ",".join(models)
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if quantize:
        overrides["quantize"] = quantize
    settings = Settings(**overrides)
    registry = load_registry(settings)  # a bad model directory fails here, before listening
    names = ", ".join(f"{t.name} ({t.src_lang}-{t.tgt_lang})" for t in registry.translators.values())
    print(f"serving {names} on http://{settings.host}:{settings.port}/ (API docs at /docs)",
          file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings, registry), host=settings.host, port=settings.port,
                log_level="info", timeout_graceful_shutdown=30)
