"""The models the service holds: loaded once, found by language pair or by name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nmt.config import DEFAULT_PRECISION
from nmt.corpus import LANGUAGE_NAMES
from nmt.errors import NmtError
from nmt.translator import Translator


def find_model_dirs(root: str | Path) -> list[Path]:
    root = Path(root)
    return sorted(p.parent for p in root.glob("*/model.safetensors")) if root.is_dir() else []


def val_bleu(path: Path) -> float:
    try:
        return float(json.loads((path / "metrics.json").read_text())["val"]["bleu"])
    except (OSError, KeyError, ValueError, TypeError):
        return -1.0


@dataclass
class Registry:
    translators: dict[str, Translator] = field(default_factory=dict)  # by model name
    defaults: dict[tuple[str, str], str] = field(default_factory=dict)  # (src, tgt) -> name
    scores: dict[str, float] = field(default_factory=dict)  # val BLEU by model name

    @classmethod
    def load(cls, paths: list[str | Path], defaults: dict[str, str] | None = None,
             threads: int = 0, quantize: str = DEFAULT_PRECISION) -> Registry:
        registry = cls()
        for path in paths:
            translator = Translator.load(path, threads=threads, quantize=quantize)
            registry.add(translator, score=val_bleu(Path(path)))
        for pair, name in (defaults or {}).items():
            if name not in registry.translators:
                raise NmtError(f"default model {name!r} for {pair} is not loaded")
            src, tgt = pair.split("-")
            registry.defaults[(src, tgt)] = name
        return registry

    def add(self, translator: Translator, score: float = -1.0) -> None:
        self.translators[translator.name] = translator
        self.scores[translator.name] = score
        key = (translator.src_lang, translator.tgt_lang)
        current = self.defaults.get(key)
        if current is None or score > self.scores[current]:
            self.defaults[key] = translator.name

    def pick(self, source: str, target: str, name: str | None = None) -> Translator | None:
        if name:
            translator = self.translators.get(name)
            if translator and (translator.src_lang, translator.tgt_lang) == (source, target):
                return translator
            return None
        default = self.defaults.get((source, target))
        return self.translators[default] if default else None

    def languages(self) -> list[dict]:
        targets: dict[str, set[str]] = {}
        for src, tgt in self.defaults:
            targets.setdefault(src, set()).add(tgt)
            targets.setdefault(tgt, set())
        return [{"code": code, "name": LANGUAGE_NAMES.get(code, code),
                 "targets": sorted(targets[code])} for code in sorted(targets)]
