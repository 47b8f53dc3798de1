"""Service settings, from the environment (``NMT_*``) or a ``.env`` file, via pydantic-settings."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nmt.core.errors import NmtError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NMT_", env_file=".env", extra="ignore")

    models: str = ""  # comma-separated model directories; empty: every one under models_dir
    models_dir: str = "models"  # where to look when NMT_MODELS is empty
    default_models: str = ""  # e.g. "de-en=transformer-de-en"; else the best val BLEU per pair
    host: str = "127.0.0.1"  # address to listen on
    port: int = Field(5000, ge=0, le=65535)  # port to listen on
    char_limit: int = Field(5000, ge=1)  # characters per text
    batch_limit: int = Field(64, ge=1)  # texts per request
    sentence_limit: int = Field(256, ge=1)  # sentences per request, after splitting the texts
    # Source subwords x beam size per request: the work it may cause, bounded before it is
    # queued (16,384: three 5,000-character texts of prose, or 200 captions, at beam 4; 5,000
    # random letters at beam 4 exceed it).
    work_limit: int = Field(16_384, ge=1)
    # A part of a request with more subwords (one long sentence, or many sentences) is decoded
    # in the lane for large work, one batch at a time (serve/batcher.py).
    heavy_tokens: int = Field(256, ge=1)
    body_limit: int = Field(1_000_000, ge=1024)  # bytes per request body
    # Requests a minute per client (its API key, else its address) to /translate and /detect;
    # 0: no limit (serve/limits.py).
    req_limit: int = Field(0, ge=0)
    # /translate_file: bytes per file, characters of text per file, and the results kept (at
    # most files_keep of them, each files_ttl_s seconds, in files_dir: empty, a fresh temporary
    # folder removed when the server stops).
    file_limit: int = Field(5_000_000, ge=1024)
    file_char_limit: int = Field(100_000, ge=1)
    files_dir: str = ""
    files_keep: int = Field(100, ge=1)
    files_ttl_s: float = Field(3600.0, gt=0)
    api_keys: str = ""  # comma-separated; empty: no key needed
    metrics_public: bool = False  # /metrics without a key even when keys are set
    cors_origins: str = ""  # comma-separated origins allowed by CORS
    beam_size: int = Field(4, ge=1, le=64)  # beam size when a request names none
    max_beam_size: int = Field(8, ge=1, le=64)  # largest beam_size a request may ask for
    max_alternatives: int = Field(4, ge=0, le=63)  # most alternatives a request may ask for
    queue_size: int = Field(256, ge=1)  # sentences waiting (short requests and large work each); beyond: 503
    max_wait_ms: float = Field(5.0, ge=0, le=10_000)  # under load, how long a batch waits for more
    batch_max_sentences: int = Field(64, ge=1)  # sentences decoded in one batch at most
    request_timeout_s: float = Field(30.0, gt=0, le=3600)  # a request not answered by then gets 504
    # A client that stalls: its connection is closed when the request headers have not all
    # arrived in header_timeout_s, its request refused (408) when the body stalls that long.
    header_timeout_s: float = Field(10.0, gt=0, le=3600)
    body_timeout_s: float = Field(10.0, gt=0, le=3600)  # (see header_timeout_s)
    # A client that trickles its body a byte at a time, each within body_timeout_s, is refused
    # (408) once the whole body has taken this long; one that does not read its response is cut
    # off when the response has waited this long to be written.
    body_deadline_s: float = Field(60.0, gt=0, le=3600)
    write_timeout_s: float = Field(30.0, gt=0, le=3600)  # (see body_deadline_s)
    quantize: Literal["int8", "none"] = "int8"  # decoding weights (nmt.core.config.PRECISIONS)
    # Batches translated side by side (0: one per core) and torch threads per batch (0: the cores
    # shared among the workers). See serve/batcher.py.
    workers: int = Field(0, ge=0, le=256)
    threads: int = Field(0, ge=0, le=256)  # (see workers)
    # Workers are processes of their own (serve/workers.py: two processes decode side by side,
    # two threads of one process mostly take turns), or threads of the server process. Processes
    # are forked, which only Linux does safely.
    processes: bool = sys.platform == "linux"

    @field_validator("api_keys")
    @classmethod
    def _some_key_or_none(cls, value: str) -> str:
        # " , " would otherwise turn authentication off without a word
        if value.strip() and not [k for k in value.split(",") if k.strip()]:
            raise ValueError("lists no key (only commas and blanks); leave it empty for no keys")
        return value

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


def load_settings(**overrides) -> Settings:
    """Settings from the environment (and ``overrides``); an invalid value is one line naming the
    variable, the value and what is allowed."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]) if item["loc"] else "?"
            value = item.get("input")
            problems.append(f"NMT_{name.upper()}={value!r}: {item['msg']}")
        raise NmtError("invalid setting: " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
