"""The models the service holds: loaded once, found by language pair or by name.

A pair served by several models (a bilingual one and a multilingual one, say) goes to the one
with the higher val BLEU for that pair, unless ``NMT_DEFAULT_MODELS`` names another.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from nmt.core.config import DEFAULT_PRECISION
from nmt.core.errors import NmtError
from nmt.data.corpus import LANGUAGE_NAMES
from nmt.decode.translator import Translator
from nmt.text.language import LanguageDetector


def find_model_dirs(root: str | Path) -> list[Path]:
    """The model directories under ``root``; dot-named folders (a write in progress, or the
    leftovers of one that was killed: nmt/core/files.py) are not models."""
    root = Path(root)
    return sorted(p.parent for p in root.glob("*/model.safetensors")
                  if not p.parent.name.startswith(".")) if root.is_dir() else []


def val_bleu(path: Path) -> dict[str, float]:
    """Val BLEU by pair ("de-en") from a model directory's metrics.json, as ``nmt release``
    writes it (per pair for a multilingual model) or training left it; {} when it has none."""
    try:
        metrics = json.loads((Path(path) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    try:
        if "pairs" in metrics:
            return {pair: float(m["val"]["bleu"]) for pair, m in metrics["pairs"].items()}
        if "val" in metrics:
            return {"*": float(metrics["val"]["bleu"])}
        training = metrics.get("training", {})
        return {k: float(v) for k, v in training.get("val_bleu_by_pair", {}).items()} or \
            {"*": float(training["val_bleu"])}
    except (KeyError, ValueError, TypeError, AttributeError):
        return {}


@dataclass
class Registry:
    translators: dict[str, Translator] = field(default_factory=dict)  # by model name
    defaults: dict[tuple[str, str], str] = field(default_factory=dict)  # (src, tgt) -> name
    scores: dict[tuple[str, str, str], float] = field(default_factory=dict)  # name, src, tgt

    @classmethod
    def load(cls, paths: list[str | Path], defaults: dict[str, str] | None = None,
             threads: int = 0, quantize: str = DEFAULT_PRECISION) -> Registry:
        registry = cls()
        for path in paths:
            translator = Translator.load(path, threads=threads, quantize=quantize)
            registry.add(translator, scores=val_bleu(Path(path)))
        for pair, name in (defaults or {}).items():
            if name not in registry.translators:
                raise NmtError(f"default model {name!r} for {pair} is not loaded")
            src, tgt = pair.split("-")
            if (src, tgt) not in registry.translators[name].pairs:
                raise NmtError(f"default model {name!r} for {pair} does not translate {pair}")
            registry.defaults[(src, tgt)] = name
        return registry

    def add(self, translator: Translator, score: float = -1.0,
            scores: dict[str, float] | None = None) -> None:
        """``scores``: val BLEU by pair ("*" for any pair), else ``score`` for every pair."""
        other = self.translators.get(translator.name)
        if other is not None and other is not translator:
            raise NmtError(f"two models named {translator.name!r} ({other.path} and "
                           f"{translator.path}): requests choose models by folder name")
        self.translators[translator.name] = translator
        for src, tgt in translator.pairs:
            pair_score = (scores or {}).get(f"{src}-{tgt}", (scores or {}).get("*", score))
            self.scores[(translator.name, src, tgt)] = pair_score
            current = self.defaults.get((src, tgt))
            if current is None or pair_score > self.scores[(current, src, tgt)]:
                self.defaults[(src, tgt)] = translator.name

    def pick(self, source: str, target: str, name: str | None = None) -> Translator | None:
        """The translator for ``source`` -> ``target`` (of model ``name`` if given), or None."""
        name = name or self.defaults.get((source, target))
        translator = self.translators.get(name) if name else None
        if translator is None or (source, target) not in translator.pairs:
            return None
        return translator.for_pair(source, target)

    @functools.cached_property
    def detector(self) -> LanguageDetector:
        """Language identification over the languages served as sources."""
        return LanguageDetector(sorted({source for source, _ in self.defaults}))

    def served(self) -> str:
        """The pairs served, for error messages: "de-en, en-de"."""
        return ", ".join(f"{s}-{t}" for s, t in sorted(self.defaults))

    def languages(self) -> list[dict]:
        targets: dict[str, set[str]] = {}
        for src, tgt in self.defaults:
            targets.setdefault(src, set()).add(tgt)
            targets.setdefault(tgt, set())
        return [{"code": code, "name": LANGUAGE_NAMES.get(code, code),
                 "targets": sorted(targets[code])} for code in sorted(targets)]
