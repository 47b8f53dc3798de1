"""Translator: a model directory in, ``translate(list[str]) -> list[str]`` out.

Used by the CLI, the server and the evaluation alike. A text is cut into sentences
(nmt/text/sentences.py); each goes once through the input pipeline (nmt/text/pipeline.py:
pass-through spans, casing), is cut further if too long (nmt/decode/cutting.py), searched in
length-sorted batches within a token budget (nmt/decode/search.py), and finished by the pipeline.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from nmt.core.config import DEFAULT_PRECISION, Config, directions
from nmt.core.errors import NmtError
from nmt.data.batching import decode_batches, encode_source, pad
from nmt.data.tokenizer import BOS_ID, PAD_ID, Tokenizer
from nmt.decode.alignment import word_links
from nmt.decode.cutting import translate_texts
from nmt.decode.quantize import quantize as quantize_model
from nmt.decode.search import Hypothesis, UncachedDecoder, search
from nmt.decode.target_vocabulary import TargetVocabulary, read_target_vocabularies
from nmt.models.directory import load_model, read_model_config
from nmt.text.pieces import Alignment, Translation, join_translations
from nmt.text.pipeline import InputOptions, InputPipeline, Prepared
from nmt.text.sentences import split_sentences


def check_texts(texts) -> None:
    if isinstance(texts, str):
        raise TypeError("translate takes a list of texts; wrap a single text as [text]")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("translate takes a list of str")


class Translator:
    """One direction of a model. A multilingual model serves each of its directions through a
    translator of its own (``for_pair``), sharing the weights: the target language's tag is put
    before every source it encodes.

    ``options``: the input pipeline's steps (all on); ``restrict_output``: decode only the
    target language's pieces where the model directory lists them (nmt/decode/target_vocabulary.py).
    Both are switchable to measure them (``with_options``)."""

    def __init__(self, model, tokenizer: Tokenizer, config: Config, name: str = "model",
                 path: Path | None = None, precision: str = "none", parameters: int = 0,
                 pair: tuple[str, str] | None = None,
                 target_vocabularies: dict[str, TargetVocabulary] | None = None,
                 options: InputOptions = InputOptions(), restrict_output: bool = True):
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
        self.options, self.restrict_output = options, restrict_output
        self.pipeline = InputPipeline(tokenizer, options, config.data.spm_model_type == "unigram")
        self.target_vocabularies = target_vocabularies or {}

    @classmethod
    def load(cls, path: str | Path, threads: int = 0, quantize: str = DEFAULT_PRECISION,
             pair: tuple[str, str] | None = None) -> Translator:
        """``quantize``: "int8" (the default: faster at equal BLEU, nmt/decode/quantize.py) or
        "none"; ``pair``: the direction (source, target), by default the model's first."""
        path = Path(path)
        config = read_model_config(path)
        tokenizer = Tokenizer(path / "spm.model")
        if threads > 0:
            torch.set_num_threads(threads)
        model = load_model(path, config, tokenizer.vocab_size)
        parameters = model.num_parameters()  # before quantize() turns weights into buffers
        model = quantize_model(model, quantize)
        vocabularies = {lang: TargetVocabulary(model, ids) for lang, ids in
                        read_target_vocabularies(path, tokenizer.vocab_size).items()}
        return cls(model, tokenizer, config, name=path.name, path=path, precision=quantize,
                   parameters=parameters, pair=pair, target_vocabularies=vocabularies)

    def _view(self, pair: tuple[str, str], options: InputOptions, restrict_output: bool) -> Translator:
        return Translator(self.model, self.tokenizer, self.config, self.name, self.path,
                          self.precision, self.parameters, pair, self.target_vocabularies,
                          options, restrict_output)

    def for_pair(self, source: str, target: str) -> Translator:
        """This model's translator for ``source`` -> ``target`` (NmtError if it has no such
        direction); one per direction, made once."""
        view = self.views.get((source, target))
        if view is None:
            view = self._view((source, target), self.options, self.restrict_output)
            view.views = self.views
            self.views[(source, target)] = view
        return view

    def with_options(self, restrict_output: bool | None = None, **steps) -> Translator:
        """The same model and direction with some input steps (``InputOptions``' fields) or the
        output restriction switched."""
        options = dataclasses.replace(self.options, **steps)
        return self._view((self.src_lang, self.tgt_lang), options,
                          self.restrict_output if restrict_output is None else restrict_output)

    def translate(self, texts: list[str], beam_size: int | None = None) -> list[str]:
        """One translation per text (a list of strings; a lone string is refused, since
        iterating it would translate its characters one by one)."""
        return [t.text for t in self.translate_full(texts, beam_size)]

    def translate_full(self, texts: list[str], beam_size: int | None = None,
                       n_best: int = 1, align: bool = False) -> list[Translation]:
        """Translations with scores and alternatives; an empty or blank text gives "".

        A text of several sentences is translated sentence by sentence and put back together
        with its own spacing; nothing is truncated (over-long sentences go in word chunks).
        With ``align``, each carries ``links``: (source word, translation word) pairs.
        """
        check_texts(texts)
        if beam_size is not None and (isinstance(beam_size, bool) or not isinstance(beam_size, int)
                                      or beam_size < 1):
            raise ValueError(f"beam_size must be a whole number of at least 1, got {beam_size!r}")
        if not 1 <= n_best <= (beam_size or self.config.decode.beam_size):
            raise ValueError(f"n_best must be between 1 and the beam size, got {n_best}")
        pieces = [split_sentences(text) for text in texts]
        flat = [sentence for p in pieces for sentence, _ in p]
        done = self.translate_prepared(self.prepare(flat), beam_size, n_best, links=align)
        out, at = [], 0
        for p in pieces:
            out.append(join_translations(done[at:at + len(p)], p))
            at += len(p)
        return out

    def translate_sentences(self, sentences: list[str], beam_size: int | None = None,
                            n_best: int = 1, attention: bool = False) -> list[Translation]:
        """One translation per sentence; blank gives "". With ``attention``, each carries the
        cross-attention over the very ids that were decoded."""
        return self.translate_prepared(self.prepare(sentences), beam_size, n_best, attention)

    def prepare(self, sentences: list[str]) -> list[Prepared]:
        """Each sentence through the input pipeline, once: what the model reads."""
        return [self.pipeline.prepare(s) for s in sentences]

    def source_lengths(self, prepared: list[Prepared]) -> list[int]:
        """The subwords the model reads for each prepared sentence (pass-through spans as one
        placeholder each): the measure of what translating it costs."""
        return [len(ids) for ids in self.encode_sources([p.text for p in prepared])]

    def translate_prepared(self, prepared: list[Prepared], beam_size: int | None = None,
                           n_best: int = 1, attention: bool = False,
                           links: bool = False) -> list[Translation]:
        """Translations of prepared sentences (``prepare``), finished as they were typed; with
        ``links``, each carries its word links to the sentence as typed (``word_alignment``)."""
        done = translate_texts(self, [p.text for p in prepared], beam_size, n_best,
                               attention=attention)
        finished = [self.pipeline.finish(t, p) for t, p in zip(done, prepared)]
        if links:
            finished = [dataclasses.replace(t, links=tuple(self.word_alignment(p.typed, t.text)))
                        for t, p in zip(finished, prepared)]
        return finished

    def encode_sources(self, texts: list[str]) -> list[list[int]]:
        """Subword ids as the model reads them: after the target's tag, for a multilingual one."""
        ids = self.tokenizer.encode(texts)
        return ids if self.target_tag is None else [[self.target_tag] + x for x in ids]

    @property
    def decoder(self):
        """What the search drives: the model, writing only the target language's pieces when
        it can (a ``TargetVocabulary``)."""
        restricted = self.target_vocabularies.get(self.tgt_lang) if self.restrict_output else None
        return restricted or self.model

    def search_ids(self, ids: list[list[int]], beam_size: int | None = None,
                   n_best: int = 1) -> list[list[Hypothesis]]:
        """Hypotheses for source ids, searched in length-sorted batches, in the order given."""
        beam_size = beam_size or self.config.decode.beam_size
        results: list[list[Hypothesis]] = [[] for _ in ids]
        for indices in decode_batches(ids, beam_size, self.config.decode.max_tokens):
            for i, h in zip(indices, self.search_batch([ids[i] for i in indices], beam_size,
                                                       n_best)):
                results[i] = h
        return results

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

    def word_alignment(self, source: str, translation: str) -> list[tuple[int, int]]:
        """Which words of ``source`` each word of ``translation`` comes from: links (i, j), the
        i-th source word with the j-th translation word (words split on whitespace, 0-indexed),
        by the method with the best AER on gold alignments (nmt/decode/alignment.py)."""
        return word_links(self.model, self.tokenizer, source, translation, self.target_tag)

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
