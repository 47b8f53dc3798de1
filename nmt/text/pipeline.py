"""The input pipeline: a sentence as typed -> what the model reads -> its translation as typed.

Called once per sentence by everything that translates (``Translator``: the CLI, the service,
evaluation), so they all handle what people type alike:

    prepared = pipeline.prepare("DER PREIS: 25,50 € AM 12.05.2023")
    prepared.text       # "der preis: \ue001 am \ue002", spans ("25,50 €", "12.05.2023"), shouting
    pipeline.finish(translation, prepared)   # "THE PRICE: 25,50 € ON 12.05.2023"

``prepare``: pass-through spans (links, numbers, emoji...) become placeholders
(nmt/text/passthrough.py); a sentence in capitals is lowered (and its translation put in
capitals), runs of words in capitals inside a sentence are truecased, acronyms the vocabulary
cannot spell pass through, and a sentence all in lowercase is truecased (nmt/text/casing.py).
``finish`` undoes it on the translation and its alternatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from nmt.text.casing import in_capitals, is_lowercase, is_shouting, lower_shouted_runs, shout, truecase
from nmt.text.passthrough import (
    PLACEHOLDERS,
    Protected,
    is_symbol,
    protect,
    protect_acronyms,
    repair_copies,
    restore,
)
from nmt.text.pieces import Alignment, Translation

# Words in capitals up to this long may be acronyms ("UNESCO"); longer ones are words typed
# for emphasis ("SCHNAPPSCHUSS"), lowered for the model.
ACRONYM_LETTERS = 6


# Characters nothing should be translated from, nor given back raw: terminal escape sequences
# (whole), other control characters, and invisible format characters (zero-width spaces, soft
# hyphens, direction marks, byte-order marks), which made the model write words that were not
# there. Tabs and line breaks are spacing, and stay.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?")
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b\u200c\u200e\u200f"
                        "\u2060\ufeff]")
_JOINER = "\u200d"


def drop_invisible(text: str) -> str:
    """``text`` without control and invisible characters; a zero width joiner stays only
    between two symbols, where it glues an emoji sequence (👩‍💻)."""
    text = _INVISIBLE.sub("", _ESCAPES.sub("", text))
    if _JOINER not in text:
        return text
    return "".join(c for i, c in enumerate(text)
                   if c != _JOINER or (0 < i < len(text) - 1 and is_symbol(text[i - 1])
                                       and is_symbol(text[i + 1])))


class Vocabulary(Protocol):
    """What the pipeline asks of the model's tokenizer (nmt/data/tokenizer.py)."""

    has_placeholders: bool

    def encode(self, texts: list[str]) -> list[list[int]]: ...

    def log_prob(self, piece: str) -> float: ...


@dataclass(frozen=True)
class InputOptions:
    """The steps of the pipeline, each switchable to measure what it is worth
    (scripts/robustness_ablation.py); all on in every command."""

    pass_through: bool = True  # spans swapped for placeholders (if the vocabulary has them)
    lower_capitals: bool = True  # shouted sentences and runs of capitals lowered
    truecase: bool = True  # lowercase input truecased (unigram vocabularies only)
    repair_names: bool = True  # copied names with a letter wrong put right


@dataclass(frozen=True)
class Prepared:
    """A sentence as the model reads it, and what is needed to give it back as typed."""

    text: str
    spans: tuple[str, ...]
    shouting: bool
    typed: str = ""  # the sentence as it was given (word links refer to its words)


class InputPipeline:
    """``prepare`` and ``finish`` for one vocabulary. ``unigram``: its piece scores are
    log-probabilities, which truecasing needs."""

    def __init__(self, vocabulary: Vocabulary, options: InputOptions = InputOptions(),
                 unigram: bool = True):
        self.vocabulary, self.options, self.unigram = vocabulary, options, unigram

    def prepare(self, sentence: str) -> Prepared:
        o, vocabulary, typed = self.options, self.vocabulary, sentence
        sentence = drop_invisible(sentence)
        spans = protect(sentence)
        passing = o.pass_through and vocabulary.has_placeholders
        protected = spans if passing else Protected(sentence, ())
        # judged without the spans: a link or e-mail address keeps its lowercase in shouted text
        shouting = o.lower_capitals and is_shouting(spans.text)
        text = protected.text.lower() if shouting else protected.text
        unigram = o.truecase and self.unigram
        if o.lower_capitals and not shouting:
            text = lower_shouted_runs(text, vocabulary.log_prob if unigram else lambda _: 0.0,
                                      self.is_emphasis)
            if passing:  # what is left in capitals: acronyms, some unknown to the model
                protected = protect_acronyms(Protected(text, protected.spans), self.is_unknown_acronym)
                text = protected.text
        if unigram and is_lowercase(text):
            text = truecase(text, vocabulary.log_prob)
        return Prepared(text.strip(), protected.spans, shouting, typed)

    def finish(self, translation: Translation, prepared: Prepared) -> Translation:
        """Spans put back, names copied with a letter wrong put right (``repair_copies``) and
        capitals restored, in the translation and its alternatives."""
        repair = self.options.repair_names and not prepared.shouting

        def fix(text: str) -> str:
            text = restore(text, prepared.spans)
            if repair:
                text = repair_copies(prepared.text, text, self.is_common_word)
            return shout(text, prepared.spans) if prepared.shouting else text

        alignment = translation.alignment
        if alignment is not None and prepared.spans:
            show = dict(zip(PLACEHOLDERS, prepared.spans))
            unmask = lambda tok: "".join(show.get(c, c) for c in tok)  # noqa: E731
            alignment = Alignment([unmask(t) for t in alignment.src_tokens],
                                  [unmask(t) for t in alignment.tgt_tokens], alignment.weights)
        return Translation(fix(translation.text), translation.score,
                           [(fix(a), score) for a, score in translation.alternatives],
                           translation.tokens, alignment)

    def is_common_word(self, word: str) -> bool:
        """A word the vocabulary holds whole (one piece): a real word, not a garbled copy."""
        return len(self.vocabulary.encode([word])[0]) <= 1

    def _known_forms(self, word: str) -> tuple[bool, bool]:
        """Whether the vocabulary holds ``word`` whole as typed, and in small letters or
        capitalised."""
        return self.is_common_word(word), any(self.is_common_word(form)
                                              for form in (word.lower(), word.capitalize()))

    def is_unknown_acronym(self, word: str) -> bool:
        """A word in capitals of at most ``ACRONYM_LETTERS`` letters that the vocabulary has no
        piece for, typed in capitals or not ("EU": "E" + "U", "eu", "Eu" likewise). "LKW" is
        one piece, a word the model learned (and translates: "truck"); "SEHR" is "sehr" typed
        for emphasis (``is_emphasis``)."""
        return in_capitals(word) and len(word) <= ACRONYM_LETTERS and not any(self._known_forms(word))

    def is_emphasis(self, word: str) -> bool:
        """A word in capitals that the vocabulary knows only in small letters ("SEHR", "sehr"),
        or longer than acronyms are ("SCHNAPPSCHUSS")."""
        as_typed, otherwise = self._known_forms(word)
        return not as_typed and (len(word) > ACRONYM_LETTERS or otherwise)
