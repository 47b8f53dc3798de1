"""The translation service: a LibreTranslate-compatible REST API over nmt's Translator."""

from nmt.memory import keep_freed_memory

# Before anything allocates (nmt/memory.py), however the app is started (``nmt serve``, uvicorn);
# the forked workers inherit it.
keep_freed_memory()

from serve.app import create_app  # noqa: E402

__all__ = ["create_app"]
