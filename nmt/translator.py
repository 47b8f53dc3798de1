"""Translator: a model directory in, ``translate(list[str]) -> list[str]`` out.

Used by the CLI, the server and the evaluation alike, so all of them handle what people type the
same way: a text is cut into sentences; each has its pass-through spans swapped for placeholders
(nmt/passthrough.py) and its casing made the one the model knows (nmt/casing.py); a sentence too
long for the model is halved, and one whose translation comes out implausibly short is split
into clauses (nmt/translation.py joins the pieces back); spans and capitals are restored at the
end. Inputs are sorted by length and cut into token-budget batches (little padding, full matrix
products), then put back in their order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.batching import encode_source, pad
from nmt.casing import (
    in_capitals,
    is_lowercase,
    is_shouting,
    lower_shouted_runs,
    shout,
    truecase,
)
from nmt.checkpoint import load_weights, read_model_config
from nmt.config import DEFAULT_PRECISION, Config, directions
from nmt.errors import NmtError
from nmt.models import build_model
from nmt.passthrough import PLACEHOLDERS, Protected, protect, protect_acronyms, repair_copies, restore
from nmt.quantize import quantize as quantize_model
from nmt.search import Hypothesis, UncachedDecoder, search
from nmt.segment import split_sentences
from nmt.target_vocabulary import TargetVocabulary, read_target_vocabularies
from nmt.tokenizer import BOS_ID, PAD_ID, Tokenizer
from nmt.translation import (
    Alignment,
    Cut,
    Translation,
    halve,
    join_parts,
    join_translations,
    split_clauses,
)

# Words in capitals up to this long may be acronyms ("UNESCO"); longer ones are words typed
# for emphasis ("SCHNAPPSCHUSS"), lowered for the model.
ACRONYM_LETTERS = 6
MAX_CLAUSE_SPLITS = 2  # a sentence is split at most twice over for a short translation
MIN_SPLIT_TOKENS = 16  # shorter sources are never split: their translations are legitimately terse


@dataclass(frozen=True)
class Prepared:
    """A sentence as the model reads it, and what is needed to give it back as typed."""

    text: str
    spans: tuple[str, ...]
    shouting: bool


def check_texts(texts) -> None:
    if isinstance(texts, str):
        raise TypeError("translate takes a list of texts; wrap a single text as [text]")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("translate takes a list of str")


def finish(translation: Translation, prepared: Prepared,
           is_common: Callable[[str], bool] | None = None) -> Translation:
    """Spans put back, names copied with a letter wrong put right (given ``is_common``, see
    ``repair_copies``) and capitals restored, in the translation and its alternatives."""
    def fix(text: str) -> str:
        text = restore(text, prepared.spans)
        if is_common is not None and not prepared.shouting:
            text = repair_copies(prepared.text, text, is_common)
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


class Translator:
    """One direction of a model. A multilingual model serves each of its directions through a
    translator of its own (``for_pair``), sharing the weights: the target language's tag is put
    before every source it encodes."""

    def __init__(self, model, tokenizer: Tokenizer, config: Config, name: str = "model",
                 path: Path | None = None, precision: str = "none", parameters: int = 0,
                 pair: tuple[str, str] | None = None,
                 target_vocabularies: dict[str, TargetVocabulary] | None = None):
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config
        self.name, self.path, self.precision = name, path, precision
        self.parameters = parameters or model.num_parameters()
        self.pairs = directions(config.data)
        self.src_lang, self.tgt_lang = pair or self.pairs[0]
        if (self.src_lang, self.tgt_lang) not in self.pairs:
            raise NmtError(f"{name} translates {', '.join('-'.join(p) for p in self.pairs)}, "
                           f"not {self.src_lang}-{self.tgt_lang}")
        self.target_tag = tokenizer.language_tag(self.tgt_lang) if config.data.pairs else None
        self.views = {(self.src_lang, self.tgt_lang): self}
        # The input handling of ``prepare``, each switchable to measure what it is worth
        # (scripts/robustness_ablation.py); both on in every command.
        self.pass_through, self.lower_capitals, self.truecase = True, True, True
        self.repair_names = True
        # Decoding writes only the target language's pieces where the model directory lists
        # them (nmt/target_vocabulary.py); switchable to measure it (bench/decode.py).
        self.target_vocabularies = target_vocabularies or {}
        self.restrict_output = True

    @classmethod
    def load(cls, path: str | Path, threads: int = 0, quantize: str = DEFAULT_PRECISION,
             pair: tuple[str, str] | None = None) -> Translator:
        """``quantize``: "int8" (the default: measured faster here at equal BLEU) or "none";
        ``pair``: the direction (source, target), by default the model's first."""
        path = Path(path)
        config = read_model_config(path)
        tokenizer = Tokenizer(path / "spm.model")
        if threads > 0:
            torch.set_num_threads(threads)
        model = build_model(config.model, tokenizer.vocab_size)
        load_weights(model, path / "model.safetensors")
        parameters = model.num_parameters()  # before quantize() turns weights into buffers
        model = quantize_model(model, quantize)
        vocabularies = {lang: TargetVocabulary(model, ids) for lang, ids in
                        read_target_vocabularies(path, tokenizer.vocab_size).items()}
        return cls(model, tokenizer, config, name=path.name, path=path, precision=quantize,
                   parameters=parameters, pair=pair, target_vocabularies=vocabularies)

    def for_pair(self, source: str, target: str) -> Translator:
        """This model's translator for ``source`` -> ``target`` (NmtError if it has no such
        direction); one per direction, made once."""
        view = self.views.get((source, target))
        if view is None:
            view = Translator(self.model, self.tokenizer, self.config, self.name, self.path,
                              self.precision, self.parameters, pair=(source, target),
                              target_vocabularies=self.target_vocabularies)
            view.views = self.views
            view.pass_through, view.lower_capitals = self.pass_through, self.lower_capitals
            view.truecase, view.repair_names = self.truecase, self.repair_names
            view.restrict_output = self.restrict_output
            self.views[(source, target)] = view
        return view

    def encode_sources(self, texts: list[str]) -> list[list[int]]:
        """Subword ids as the model reads them: after the target's tag, for a multilingual one."""
        ids = self.tokenizer.encode(texts)
        return ids if self.target_tag is None else [[self.target_tag] + x for x in ids]

    def batches(self, ids: list[list[int]], beam_size: int) -> list[list[int]]:
        """Indices of ``ids`` grouped longest first into batches within the token budget."""
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        budget = self.config.decode.max_tokens
        batches, current, width = [], [], 0
        for i in order:
            # Decoding work grows with the beams and the target, about as long as the source.
            cost = (len(ids[i]) + 1) * 2 * beam_size
            if current and (len(current) + 1) * max(width, cost) > budget:
                batches.append(current)
                current, width = [], 0
            current.append(i)
            width = max(width, cost)
        if current:
            batches.append(current)
        return batches

    @property
    def decoder(self):
        """What the search drives: the model, writing only the target language's pieces when
        it can (a ``TargetVocabulary``)."""
        restricted = self.target_vocabularies.get(self.tgt_lang) if self.restrict_output else None
        return restricted or self.model

    def search_batch(self, ids: list[list[int]], beam_size: int, n_best: int = 1,
                     cache: bool = True) -> list[list[Hypothesis]]:
        """One batch of source ids through the search, with this model's decode settings;
        hypotheses in vocabulary ids. ``cache=False``: the prefix recomputed every step (the
        reference, and the baseline of bench/decode.py)."""
        d, decoder = self.config.decode, self.decoder
        src = pad([encode_source(x) for x in ids])
        with torch.inference_mode():  # thread-safe: concurrent calls decode their own batches
            hyps = search(decoder if cache else UncachedDecoder(decoder), src, src != PAD_ID,
                          beam_size, n_best, d.length_penalty, d.max_len_ratio, d.max_len_offset)
        return hyps if decoder is self.model else [decoder.pieces(h) for h in hyps]

    def search_ids(self, ids: list[list[int]], beam_size: int | None = None,
                   n_best: int = 1) -> list[list[Hypothesis]]:
        beam_size = beam_size or self.config.decode.beam_size
        results: list[list[Hypothesis]] = [[] for _ in ids]
        for indices in self.batches(ids, beam_size):
            for i, h in zip(indices, self.search_batch([ids[i] for i in indices], beam_size,
                                                       n_best)):
                results[i] = h
        return results

    def translate_sentences(self, sentences: list[str], beam_size: int | None = None,
                            n_best: int = 1, attention: bool = False) -> list[Translation]:
        """One translation per sentence; blank gives "". Pass-through spans are protected,
        capitals lowered and restored, and nothing of the source is silently dropped. With
        ``attention``, each carries the cross-attention over the very ids that were decoded."""
        prepared = [self.prepare(s) for s in sentences]
        done = self._translate_texts([p.text for p in prepared], beam_size, n_best, depth=0,
                                     attention=attention)
        is_common = self.is_common_word if self.repair_names else None
        return [finish(t, p, is_common) for t, p in zip(done, prepared)]

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

    def is_common_word(self, word: str) -> bool:
        """A word the vocabulary holds whole (one piece): a real word, not a garbled copy."""
        return len(self.tokenizer.encode([word])[0]) <= 1

    def source_lengths(self, sentences: list[str]) -> list[int]:
        """The subwords the model reads for each sentence (pass-through spans as one
        placeholder each): the measure of what translating it costs."""
        return [len(ids) for ids in self.encode_sources([self.prepare(s).text
                                                          for s in sentences])]

    def prepare(self, sentence: str) -> Prepared:
        spans = protect(sentence)
        passing = self.pass_through and self.tokenizer.has_placeholders
        protected = spans if passing else Protected(sentence, ())
        # judged without the spans: a link or e-mail address keeps its lowercase in shouted text
        shouting = self.lower_capitals and is_shouting(spans.text)
        text = protected.text.lower() if shouting else protected.text
        # (piece scores are log-probabilities only in a unigram vocabulary)
        unigram = self.truecase and self.config.data.spm_model_type == "unigram"
        if self.lower_capitals and not shouting:
            text = lower_shouted_runs(text, self.tokenizer.log_prob if unigram else lambda _: 0.0,
                                      self.is_emphasis)
            if passing:  # what is left in capitals: acronyms, some unknown to the model
                protected = protect_acronyms(Protected(text, protected.spans), self.is_unknown_acronym)
                text = protected.text
        if unigram and is_lowercase(text):
            text = truecase(text, self.tokenizer.log_prob)
        return Prepared(text.strip(), protected.spans, shouting)

    def plan_cut(self, text: str, ids: list[int]) -> Cut:
        """How a prepared text (``ids``: its subwords) is cut, decided by its source alone: over
        ``decode.clause_split_tokens`` into clauses, over ``decode.max_source_tokens`` in halves,
        each piece again while it is too long. Planned before any search so that the pieces of
        every text go into one search pass (a pass per level of cutting cost 5-7% of plain test
        with clause splits over 32 subwords)."""
        d = self.config.decode
        pieces = None
        if d.clause_split_tokens and len(ids) > d.clause_split_tokens:
            pieces = split_clauses(text, self.src_lang, self.tgt_lang)
        if pieces is None and len(ids) > d.max_source_tokens:
            pieces = halve(text)
        if pieces is None:
            return Cut(text, ids)
        encoded = self.encode_sources([piece for piece, _ in pieces])
        return Cut(text, pieces=pieces, parts=[self.plan_cut(piece, piece_ids) for (piece, _),
                                               piece_ids in zip(pieces, encoded)])

    def _translate_texts(self, texts: list[str], beam_size: int | None, n_best: int,
                         depth: int, attention: bool = False) -> list[Translation]:
        """Translations of prepared texts, each cut as ``plan_cut`` says and put back together."""
        cuts = [self.plan_cut(text, ids) for text, ids in zip(texts, self.encode_sources(texts))]
        leaves = [leaf for cut in cuts for leaf in cut.leaves()]
        done = iter(self._search_pieces([leaf.text for leaf in leaves], [leaf.ids for leaf in leaves],
                                        beam_size, n_best, depth, attention))
        return [cut.assemble(done, self.tgt_lang) for cut in cuts]

    def _search_pieces(self, texts: list[str], ids: list[list[int]], beam_size: int | None,
                       n_best: int, depth: int, attention: bool) -> list[Translation]:
        """Translations of texts that fit the model, in one search pass. One whose translation is
        implausibly short (a model that stopped early) is split at the clause boundary nearest its
        middle and its clauses translated apart, at most ``MAX_CLAUSE_SPLITS`` times over."""
        d = self.config.decode
        out = [Translation("", 0.0, []) for _ in texts]
        fits = [i for i, t in enumerate(texts) if t]
        for i, h in zip(fits, self.search_ids([ids[i] for i in fits], beam_size, n_best)):
            decoded = self.tokenizer.decode([x.tokens for x in h])
            pairs = list(zip(decoded, (x.score for x in h)))
            aligned = self.align_ids(ids[i], h[0].tokens) if attention else None
            out[i] = Translation(pairs[0][0], pairs[0][1], pairs[1:], len(h[0].tokens), aligned)
        retries = {}
        if depth < MAX_CLAUSE_SPLITS:
            for i in fits:
                if len(ids[i]) >= MIN_SPLIT_TOKENS and \
                        out[i].tokens < d.min_length_ratio * len(ids[i]):
                    parts = split_clauses(texts[i], self.src_lang, self.tgt_lang)
                    if parts is not None:
                        retries[i] = parts
        if retries:
            flat = [part for parts in retries.values() for part, _ in parts]
            done = self._translate_texts(flat, beam_size, n_best, depth + 1, attention)
            at = 0
            for i, parts in retries.items():
                out[i] = join_parts(done[at:at + len(parts)], parts, self.tgt_lang)
                at += len(parts)
        return out

    def translate_full(self, texts: list[str], beam_size: int | None = None,
                       n_best: int = 1) -> list[Translation]:
        """Translations with scores and alternatives; an empty or blank text gives "".

        A text of several sentences is translated sentence by sentence and put back together
        with its own spacing; nothing is truncated (over-long sentences go in word chunks).
        """
        check_texts(texts)
        if beam_size is not None and (isinstance(beam_size, bool) or not isinstance(beam_size, int)
                                      or beam_size < 1):
            raise ValueError(f"beam_size must be a whole number of at least 1, got {beam_size!r}")
        if not 1 <= n_best <= (beam_size or self.config.decode.beam_size):
            raise ValueError(f"n_best must be between 1 and the beam size, got {n_best}")
        pieces = [split_sentences(text) for text in texts]
        flat = [sentence for p in pieces for sentence, _ in p]
        done = self.translate_sentences(flat, beam_size, n_best)
        out, at = [], 0
        for p in pieces:
            out.append(join_translations(done[at:at + len(p)], p))
            at += len(p)
        return out

    def translate(self, texts: list[str], beam_size: int | None = None) -> list[str]:
        """One translation per text (a list of strings; a lone string is refused, since
        iterating it would translate its characters one by one)."""
        return [t.text for t in self.translate_full(texts, beam_size)]

    def alignment(self, source: str, translation: str) -> Alignment:
        """Where the model looks: cross-attention while it reads ``translation`` back."""
        return self.align_ids(self.encode_sources([source])[0],
                              self.tokenizer.encode([translation])[0])

    def align_ids(self, source_ids: list[int], target_ids: list[int]) -> Alignment:
        """Cross-attention of the last decoder layer, averaged over heads, while the model reads
        ``target_ids`` back after ``source_ids`` (teacher forced)."""
        src_ids, tgt_ids = encode_source(source_ids), list(target_ids)
        src = torch.tensor([src_ids])
        tgt_in = torch.tensor([[BOS_ID] + tgt_ids])
        with torch.inference_mode():
            _, weights = self.model(src, src != PAD_ID, tgt_in, need_attention=True)
        # Row t is the step that produced target token t (the last one produced eos).
        src_tokens = self.tokenizer.id_to_piece(src_ids[:-1]) + ["</s>"]
        tgt_tokens = self.tokenizer.id_to_piece(tgt_ids) + ["</s>"]
        return Alignment(src_tokens, tgt_tokens, weights[0].float().tolist())
