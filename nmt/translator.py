"""Translator: a model directory in, ``translate(list[str]) -> list[str]`` out.

Used by the CLI, the server and the evaluation alike. Inputs are sorted by length and cut into
token-budget batches (little padding, full matrix products), then put back in their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.batching import encode_source, pad
from nmt.checkpoint import load_weights, read_model_config
from nmt.config import DEFAULT_PRECISION, Config
from nmt.models import build_model
from nmt.quantize import quantize as quantize_model
from nmt.search import Hypothesis, search
from nmt.segment import join_sentences, split_sentences
from nmt.tokenizer import BOS_ID, PAD_ID, Tokenizer


@dataclass(frozen=True)
class Translation:
    text: str
    score: float
    alternatives: list[tuple[str, float]]  # n-best after the first
    tokens: int = 0  # subword tokens of the translation


@dataclass(frozen=True)
class Alignment:
    """Cross-attention of the last decoder layer over a source/target pair, averaged over heads."""

    src_tokens: list[str]
    tgt_tokens: list[str]
    weights: list[list[float]]  # (target tokens, source tokens)


def join_translations(part: list[Translation], pieces: list[tuple[str, str]]) -> Translation:
    """The translations of a text's sentences put back together with the text's own spacing;
    the k-th alternative of the text joins the k-th alternative of every sentence."""
    if len(part) == 1:
        return part[0]
    if not part:
        return Translation("", 0.0, [])
    depth = max(len(t.alternatives) for t in part)
    alternatives = [
        (join_sentences([t.alternatives[k][0] if k < len(t.alternatives) else t.text
                         for t in part], pieces),
         sum(t.alternatives[k][1] if k < len(t.alternatives) else t.score for t in part))
        for k in range(depth)]
    return Translation(join_sentences([t.text for t in part], pieces),
                       sum(t.score for t in part), alternatives, sum(t.tokens for t in part))


class Translator:
    def __init__(self, model, tokenizer: Tokenizer, config: Config, name: str = "model",
                 path: Path | None = None, precision: str = "none", parameters: int = 0):
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config
        self.name, self.path, self.precision = name, path, precision
        self.parameters = parameters or model.num_parameters()

    @classmethod
    def load(cls, path: str | Path, threads: int = 0, quantize: str = DEFAULT_PRECISION
             ) -> Translator:
        """``quantize``: "int8" (the default: measured faster here at equal BLEU) or "none"."""
        path = Path(path)
        config = read_model_config(path)
        tokenizer = Tokenizer(path / "spm.model")
        if threads > 0:
            torch.set_num_threads(threads)
        model = build_model(config.model, tokenizer.vocab_size)
        load_weights(model, path / "model.safetensors")
        parameters = model.num_parameters()  # before quantize() turns weights into buffers
        return cls(quantize_model(model, quantize), tokenizer, config, name=path.name, path=path,
                   precision=quantize, parameters=parameters)

    @property
    def src_lang(self) -> str:
        return self.config.data.src_lang

    @property
    def tgt_lang(self) -> str:
        return self.config.data.tgt_lang

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

    def search_ids(self, ids: list[list[int]], beam_size: int | None = None,
                   n_best: int = 1) -> list[list[Hypothesis]]:
        d = self.config.decode
        beam_size = beam_size or d.beam_size
        results: list[list[Hypothesis]] = [[] for _ in ids]
        with torch.inference_mode():  # thread-safe: concurrent calls decode their own batches
            for indices in self.batches(ids, beam_size):
                src = pad([encode_source(ids[i]) for i in indices])
                hyps = search(self.model, src, src != PAD_ID, beam_size, n_best,
                              d.length_penalty, d.max_len_ratio, d.max_len_offset)
                for i, h in zip(indices, hyps):
                    results[i] = h
        return results

    def translate_sentences(self, sentences: list[str], beam_size: int | None = None,
                            n_best: int = 1) -> list[Translation]:
        """One translation per sentence (as the model was trained); blank gives ""."""
        ids = self.tokenizer.encode([t.strip() for t in sentences])
        todo = [i for i, t in enumerate(sentences) if t.strip()]
        hyps = self.search_ids([ids[i] for i in todo], beam_size, n_best)
        out = [Translation("", 0.0, []) for _ in sentences]
        for i, h in zip(todo, hyps):
            decoded = self.tokenizer.decode([x.tokens for x in h])
            pairs = list(zip(decoded, (x.score for x in h)))
            out[i] = Translation(pairs[0][0], pairs[0][1], pairs[1:], len(h[0].tokens))
        return out

    def translate_full(self, texts: list[str], beam_size: int | None = None,
                       n_best: int = 1) -> list[Translation]:
        """Translations with scores and alternatives; an empty or blank text gives "".

        A text of several sentences is translated sentence by sentence and put back together
        with its own spacing; nothing is truncated (over-long sentences go in word chunks).
        """
        pieces = [split_sentences(text) for text in texts]
        flat = [sentence for p in pieces for sentence, _ in p]
        done = self.translate_sentences(flat, beam_size, n_best)
        out, at = [], 0
        for p in pieces:
            out.append(join_translations(done[at:at + len(p)], p))
            at += len(p)
        return out

    def translate(self, texts: list[str], beam_size: int | None = None) -> list[str]:
        return [t.text for t in self.translate_full(texts, beam_size)]

    def alignment(self, source: str, translation: str) -> Alignment:
        """Where the model looks: cross-attention while it reads ``translation`` back."""
        src_ids = encode_source(self.tokenizer.encode([source])[0])
        tgt_ids = self.tokenizer.encode([translation])[0]
        src = torch.tensor([src_ids])
        tgt_in = torch.tensor([[BOS_ID] + tgt_ids])
        with torch.inference_mode():
            _, weights = self.model(src, src != PAD_ID, tgt_in, need_attention=True)
        # Row t is the step that produced target token t (the last one produced eos).
        src_tokens = self.tokenizer.id_to_piece(src_ids[:-1]) + ["</s>"]
        tgt_tokens = self.tokenizer.id_to_piece(tgt_ids) + ["</s>"]
        return Alignment(src_tokens, tgt_tokens, weights[0].float().tolist())
