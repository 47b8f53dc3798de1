"""The translation service: a LibreTranslate-compatible REST API over nmt's Translator."""

from serve.app import create_app

__all__ = ["create_app"]
