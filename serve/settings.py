"""Service settings, from the environment (``NMT_*``) or a ``.env`` file, via pydantic-settings."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NMT_", env_file=".env", extra="ignore")

    models: str = ""  # comma-separated model directories; empty: every one under models_dir
    models_dir: str = "models"
    default_models: str = ""  # e.g. "de-en=transformer-de-en"; else the best val BLEU per pair
    host: str = "127.0.0.1"
    port: int = 5000
    char_limit: int = 5000  # characters per text
    batch_limit: int = 64  # texts per request
    body_limit: int = 1_000_000  # bytes per request body
    api_keys: str = ""  # comma-separated; empty: no key needed
    cors_origins: str = ""  # comma-separated origins allowed by CORS
    beam_size: int = 4
    max_beam_size: int = 8
    max_alternatives: int = 4
    queue_size: int = 256  # sentences waiting; beyond it requests get 503
    max_wait_ms: float = 5.0  # under load, how long a batch may wait for more work
    batch_max_sentences: int = 64
    request_timeout_s: float = 30.0
    quantize: Literal["int8", "none"] = "int8"  # decoding weights (nmt.config.PRECISIONS)
    # Batches translated side by side (0: one per core) and torch threads per batch (0: the cores
    # shared among the workers). See serve/batcher.py and the README's load figures.
    workers: int = 0
    threads: int = 0
    # Workers are processes of their own (serve/workers.py: two processes decode side by side,
    # two threads of one process mostly take turns), or threads of the server process. Processes
    # are forked, which only Linux does safely.
    processes: bool = sys.platform == "linux"

    def batch_workers(self) -> int:
        return self.workers if self.workers > 0 else os.cpu_count() or 1

    def torch_threads(self) -> int:
        return self.threads if self.threads > 0 else max(1, (os.cpu_count() or 1)
                                                             // self.batch_workers())

    def model_paths(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    def keys(self) -> set[str]:
        return {k.strip() for k in self.api_keys.split(",") if k.strip()}

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def defaults(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.default_models.split(",") if "=" in item)
        return {pair.strip(): name.strip() for pair, name in pairs}


@lru_cache
def get_settings() -> Settings:
    return Settings()
