"""What the study measures on one trained model: the model alone, as the architecture made it.

Translations here are the raw search (``raw_translate``): no sentence splitting, no clause
cutting, no pass-through placeholders, which would hide what the model itself does with a long
input or a name. Greedy search, so that every model is read the same cheap way.
"""

from __future__ import annotations

import math
import random
import re
from contextlib import contextmanager

import torch

from nmt.data.augment import JOINERS, join_clauses
from nmt.evaluate.scoring import bleu, by_length

JOINED_KS = (2, 4, 8)  # test sentences joined into one long input
LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 40), (41, 80), (81, 10_000))
PROBE_KS = (1, 2, 4, 8)  # the probe's inputs: 1 to 8 test sentences joined
PROBE_POSITIONS = ("start", "middle", "end")
# The probe's phrases and the one English word each must come out as: frequent in Multi30k, so
# that every model can translate them, and unambiguous. (Pass-through names and numbers were
# tried first: at the study's budget no RNN copied one at any position, so they measured
# nothing but the budget.)
PROBE_PHRASES = {"mit einem Hund": "dog", "mit einer Katze": "cat", "mit einem Pferd": "horse",
                 "mit einer Gitarre": "guitar", "mit einem Ball": "ball", "mit einem Baby": "baby"}


def raw_translate(translator, sources: list[str], beam_size: int = 1) -> list[str]:
    """The model's own greedy translations (see the module's docstring)."""
    hyps = translator.search_ids(translator.encode_sources(sources), beam_size)
    return translator.tokenizer.decode([h[0].tokens for h in hyps])


def score(hyps: list[str], refs: list[str]) -> float:
    return round(bleu(hyps, refs)[0].score, 2)


def joined(src: list[str], tgt: list[str], k: int, lang: tuple[str, str]) -> tuple[list, list]:
    """Consecutive groups of ``k`` pairs joined into one, as a long sentence is written."""
    joiners = [JOINERS.get(x, JOINERS["en"])[0] for x in lang]
    groups = [range(i, i + k) for i in range(0, len(src) - k + 1, k)]
    return ([join_clauses([src[i] for i in g], lang[0], joiners[0]) for g in groups],
            [join_clauses([tgt[i] for i in g], lang[1], joiners[1]) for g in groups])


def long_range(translator, src: list[str], tgt: list[str], test_hyps: list[str]) -> dict:
    """BLEU on inputs of 2, 4 and 8 joined test sentences, and by source length over the test
    set and those inputs together."""
    lang = (translator.src_lang, translator.tgt_lang)
    sources, hyps, refs = list(src), list(test_hyps), list(tgt)
    by_k = {}
    for k in JOINED_KS:
        s, r = joined(src, tgt, k, lang)
        h = raw_translate(translator, s)
        by_k[str(k)] = {"inputs": len(s), "bleu": score(h, r),
                        "length_ratio": round(sum(map(len, h)) / max(1, sum(map(len, r))), 3)}
        sources, hyps, refs = sources + s, hyps + h, refs + r
    return {"joined": by_k, "by_length": by_length(sources, hyps, refs, LENGTH_BUCKETS)}


def insert_word(sentence: str, token: str, position: str) -> str:
    """``token`` put before the first word, at the middle word, or before the final stop."""
    words = sentence.split()
    if position == "start":
        at = 0
    elif position == "middle":
        at = len(words) // 2
    else:
        at = len(words) - 1 if words and re.fullmatch(r"\W+", words[-1]) else len(words)
    return " ".join(words[:at] + [token] + words[at:])


def probe(translator, src: list[str], tgt: list[str], inputs: int = 100, seed: int = 0) -> dict:
    """Whether a word reaches the output from where it stands: a phrase ("mit einem Hund") put at
    the start, the middle or the end of inputs of 1 to 8 joined test sentences, and the share of
    translations that carry its word ("dog"). Each input gets a phrase whose word its reference
    lacks, so the word can only come from the phrase."""
    rng = random.Random(f"probe/{seed}")
    joiner = JOINERS.get(translator.src_lang, JOINERS["en"])[0]
    rows = []
    for k in PROBE_KS:
        groups = [[(i * k + j) % len(src) for j in range(k)] for i in range(inputs)]
        bases = [join_clauses([src[i] for i in g], translator.src_lang, joiner) for g in groups]
        phrases = [rng.choice([p for p, word in PROBE_PHRASES.items()
                               if not carries(" ".join(tgt[i] for i in g), word)]
                              or list(PROBE_PHRASES)) for g in groups]
        words = sum(len(b.split()) for b in bases) / len(bases)
        for position in PROBE_POSITIONS:
            hyps = raw_translate(translator, [insert_word(b, p, position)
                                              for b, p in zip(bases, phrases)])
            carried = sum(carries(h, PROBE_PHRASES[p]) for p, h in zip(phrases, hyps))
            rows.append({"sentences": k, "words": round(words, 1), "position": position,
                         "copy_rate": round(carried / len(hyps), 3)})
    return {"inputs": inputs, "phrases": PROBE_PHRASES, "rows": rows}


def carries(text: str, word: str) -> bool:
    """``word`` (or its plural) in ``text``, as a word, in any case."""
    return re.search(rf"\b{re.escape(word)}s?\b", text, re.I) is not None


# ----------------------------------------------------------------------------- heads


def attention_modules(model) -> list[tuple[str, torch.nn.Module]]:
    from nmt.models.attention import MultiHeadAttention

    return [(name, m) for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)]


@contextmanager
def recorded_weights(model):
    """Every attention module's per-head weights (B, h, T_q, T_k) of the next forward pass."""
    seen: dict[str, torch.Tensor] = {}
    modules = attention_modules(model)
    for name, module in modules:
        module.weights_hook = lambda w, name=name: seen.__setitem__(name, w.detach().float())
    try:
        yield seen
    finally:
        for _, module in modules:
            module.weights_hook = None


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits (0: same distribution, 1: disjoint) over the last dim."""
    m = (p + q) / 2

    def kl(a, b):
        return (a * (a.clamp_min(1e-12) / b.clamp_min(1e-12)).log2()).sum(-1)

    return (kl(p, m) + kl(q, m)) / 2


def head_divergence(translator, src: list[str], tgt: list[str]) -> dict:
    """Mean pairwise Jensen-Shannon divergence between the heads of each attention module, over
    the queries of ``src``/``tgt`` read teacher-forced; None for one head."""
    from nmt.data.batching import encode_source, pad
    from nmt.data.tokenizer import BOS_ID, PAD_ID

    model = translator.model
    src_ids = pad([encode_source(x) for x in translator.encode_sources(src)])
    tgt_ids = pad([[BOS_ID] + x for x in translator.tokenizer.encode(tgt)])
    with recorded_weights(model) as seen, torch.inference_mode():
        model(src_ids, src_ids != PAD_ID, tgt_ids)
    rows = {}
    for name, weights in seen.items():
        heads = weights.size(1)
        if heads == 1:
            rows[name] = None
            continue
        queries = (src_ids if name.startswith("encoder") else tgt_ids) != PAD_ID  # (B, T_q)
        pairs = [js_divergence(weights[:, i], weights[:, j])[queries]
                 for i in range(heads) for j in range(i + 1, heads)]
        rows[name] = round(torch.stack(pairs).mean().item(), 4)
    values = [v for v in rows.values() if v is not None]
    return {"modules": rows, "mean": round(sum(values) / len(values), 4) if values else None}


def masking_costs(translator, src: list[str], tgt: list[str]) -> dict:
    """Each head of each attention module masked alone (its output zeroed before W^O): the
    greedy BLEU it costs on ``src``."""
    base = score(raw_translate(translator, src), tgt)
    rows = []
    for name, module in attention_modules(translator.model):
        for head in range(module.n_heads):
            mask = torch.ones(module.n_heads)
            mask[head] = 0.0
            module.head_mask = mask
            try:
                masked = score(raw_translate(translator, src), tgt)
            finally:
                module.head_mask = None
            rows.append({"module": name, "head": head, "bleu": masked,
                         "cost": round(base - masked, 2)})
    costs = [r["cost"] for r in rows]
    return {"sentences": len(src), "bleu": base, "heads": rows,
            "mean_cost": round(sum(costs) / len(costs), 2), "max_cost": max(costs),
            "removable_share": round(sum(c < 0.5 for c in costs) / len(costs), 3)}


def spread(values: list[float | None]) -> dict:
    """Mean, min and max over seeds (None where a run diverged)."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return {"mean": None, "min": None, "max": None, "runs": values}
    return {"mean": round(sum(kept) / len(kept), 2), "min": min(kept), "max": max(kept),
            "runs": values}
