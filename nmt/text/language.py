"""Which language a text is in, among the languages the served models read.

``lingua-language-detector`` identifies it: its models ship inside the package, so it works
offline, and it is built for short text (one to three words is what translation clients often
send). Restricted to the candidate languages, it was the more accurate on the first two words of
Multi30k's val captions than ``langid`` (both were right on nearly every whole caption);
``python bench/detect.py`` reports its accuracy per language (reports/detect.json).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    language: str  # ISO 639-1 code, as the models name their languages
    confidence: float  # 0-100, as LibreTranslate reports it


class LanguageDetector:
    """Detects ``languages`` (ISO 639-1 codes); codes the identifier does not know are never
    detected, and one language alone is always the answer."""

    def __init__(self, languages: list[str]):
        from lingua import LanguageDetectorBuilder

        self.languages = sorted(languages)
        self.codes = [code for code in map(_iso_code, self.languages) if code is not None]
        self.detector = (LanguageDetectorBuilder.from_iso_codes_639_1(*self.codes).build()
                         if len(self.codes) >= 2 else None)

    def detect(self, text: str) -> list[Detection]:
        """Every candidate language, likeliest first. A text too short or too mixed to tell
        gets the likeliest and a low confidence, never an error; an empty one, the first
        language at confidence 0."""
        if not text.strip() or not self.languages:
            return [Detection(self.languages[0] if self.languages else "", 0.0)]
        if self.detector is None:  # one language known: it is the answer
            return [Detection(self.languages[0], 100.0)]
        values = self.detector.compute_language_confidence_values(text)
        found = [Detection(v.language.iso_code_639_1.name.lower(), round(100 * v.value, 1))
                 for v in values]
        return found or [Detection(self.languages[0], 0.0)]

    def best(self, text: str) -> Detection:
        return self.detect(text)[0]


def _iso_code(code: str):
    """lingua's code for an ISO 639-1 code, or None for one it does not detect."""
    from lingua import IsoCode639_1

    try:
        return IsoCode639_1.from_str(code)
    except ValueError:
        return None
