"""Word alignments from a model: which source words each target word comes from.

A pair (source words, target words) is read teacher-forced: the target is given, the model
predicts it token by token, and a method scores every (target subword t, source subword s):

    attention          the cross-attention of one decoder layer, heads averaged, or one head
                       (the RNN: its additive attention, one "layer" of one head)
    saliency           gradient x input: |grad_{e_s} log p(y_t) . e_s|, e_s the embedding of
                       source subword s (Simonyan et al. 2014, as in Ding et al. 2019)
    leave-one-out      log p(y_t) - log p(y_t | source subword s replaced by <unk>)

Scores are merged to words (a source word's subwords summed, a target word's averaged) and a
rule turns a word matrix into links (``links``). Every method has the same signature, so that
``nmt align`` (nmt/evaluate/alignment.py) ranks them on gold alignments and the service uses the
best one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.data.batching import encode_source
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID


@dataclass(frozen=True)
class Pair:
    """One sentence pair as the model reads it: subword ids and the word each subword is of."""

    src_ids: list[int]  # ends with eos (encode_source)
    tgt_ids: list[int]  # the target's subwords, then eos
    src_words: list[int]  # word index of each source id (-1: eos, a tag)
    tgt_words: list[int]  # word index of each target id (-1: eos)


CLOSING = set(",.;:!?)]}%…»”")  # tokens of these glue to the word before
OPENING = set("([{„“«¿¡")  # and these to the word after


def as_text(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words as the model reads text (a tokenized "nicht , daß" as "nicht, daß") and each
    word's byte span in it."""
    text, spans = "", []
    for i, word in enumerate(words):
        glued = i == 0 or set(word) <= CLOSING or set(words[i - 1]) <= OPENING
        text += "" if glued else " "
        start = len(text.encode("utf-8"))
        text += word
        spans.append((start, len(text.encode("utf-8"))))
    return text, spans


def word_pieces(tokenizer, words: list[str]) -> tuple[list[int], list[int]]:
    """Subword ids of a sentence given as words, as the model reads it whole, and the word each
    id belongs to (the one holding its last byte)."""
    text, spans = as_text(words)
    ids, owner, word = [], [], 0
    for piece in tokenizer.sp.encode(text, return_type="proto").pieces:
        while word + 1 < len(spans) and piece.end > spans[word][1]:
            word += 1
        ids.append(piece.id)
        owner.append(word)
    return ids, owner


def make_pair(tokenizer, src_words: list[str], tgt_words: list[str], tag: int | None = None) -> Pair:
    src, src_owner = word_pieces(tokenizer, src_words)
    tgt, tgt_owner = word_pieces(tokenizer, tgt_words)
    prefix = [tag] if tag is not None else []
    return Pair(encode_source(prefix + src), tgt + [EOS_ID],
                [-1] * len(prefix) + src_owner + [-1], tgt_owner + [-1])


def tensors(pair: Pair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    src = torch.tensor([pair.src_ids])
    tgt_in = torch.tensor([[BOS_ID] + pair.tgt_ids[:-1]])
    return src, src != PAD_ID, tgt_in, torch.tensor(pair.tgt_ids)


# ----------------------------------------------------------------------------- methods


def cross_attention(model, pair: Pair) -> dict[int, torch.Tensor]:
    """Each decoder layer's cross-attention per head, (h, T, S), read teacher-forced."""
    src, mask, tgt_in, _ = tensors(pair)
    layers = getattr(model, "decoder_layers", None)
    with torch.inference_mode():
        if layers is None:  # the RNN: one attention, one head
            _, alpha = model(src, mask, tgt_in, need_attention=True)
            return {0: alpha[0][None].float()}
        seen: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(layers):
            layer.cross_attn.weights_hook = lambda w, i=i: seen.__setitem__(i, w[0].float())
        try:
            model(src, mask, tgt_in)
        finally:
            for layer in layers:
                layer.cross_attn.weights_hook = None
    return seen


def target_log_probs(model, src, mask, tgt_in, gold) -> torch.Tensor:
    """log p(y_t | y_<t, source) of the given target, (rows, T)."""
    logits = model(src, mask, tgt_in).float()
    return logits.log_softmax(-1).gather(-1, gold.expand(logits.size(0), -1)[..., None])[..., 0]


def saliency(model, pair: Pair) -> torch.Tensor:
    """|grad . embedding| of each source subword for each target subword, (T, S): the pair is
    read T times in one batch, row t differentiating log p(y_t) only, so one backward pass
    gives every row's gradient."""
    src, mask, tgt_in, gold = tensors(pair)
    t = gold.numel()
    embedded: list[torch.Tensor] = []

    def keep_first(module, args, out):  # the encoder embeds the source first
        if not embedded:
            out.retain_grad()
            embedded.append(out)

    hook = model.embed.register_forward_hook(keep_first)
    try:
        with torch.enable_grad():
            log_probs = target_log_probs(model, src.repeat(t, 1), mask.repeat(t, 1),
                                         tgt_in.repeat(t, 1), gold)  # (T copies, T)
            log_probs.diagonal().sum().backward()
    finally:
        hook.remove()
    x = embedded[0]
    return (x.grad * x).sum(-1).abs().detach().float()  # (T, S)


def leave_one_out(model, pair: Pair) -> torch.Tensor:
    """How much each target subword's log-probability drops when one source subword is
    replaced by <unk>, (T, S); eos is kept."""
    src, mask, tgt_in, gold = tensors(pair)
    n = src.size(1) - 1
    variants = src.repeat(n + 1, 1)
    variants[torch.arange(1, n + 1), torch.arange(n)] = UNK_ID  # row 0: the source as it is
    with torch.inference_mode():
        log_probs = target_log_probs(model, variants, variants != PAD_ID, tgt_in.repeat(n + 1, 1),
                                     gold)
    drop = (log_probs[:1] - log_probs[1:]).T  # (T, n)
    return torch.cat([drop, torch.zeros(drop.size(0), 1)], dim=1).float()


def shifted(weights: torch.Tensor) -> torch.Tensor:
    """Attention rows moved up one step: target subword t gets the row of the step that reads
    it as input (and predicts t+1), which aligns better than the step that predicts it (Chen
    et al. 2020, "shift-att"); eos gets zeros."""
    return torch.cat([weights[..., 1:, :], torch.zeros_like(weights[..., :1, :])], dim=-2)


def method_scores(model, pair: Pair, methods: list[str]) -> dict[str, torch.Tensor]:
    """Subword score matrices (T, S) for method names "attention:L" (layer L, heads
    averaged), "attention:L:H" (head H), the same with "shifted" for "attention" (``shifted``),
    "saliency" and "leave-one-out"."""
    out, attention = {}, None
    for name in methods:
        kind, *where = name.split(":")
        if kind in ("attention", "shifted"):
            attention = attention or cross_attention(model, pair)
            weights = attention[int(where[0])]
            weights = weights[int(where[1])] if len(where) > 1 else weights.mean(0)
            out[name] = shifted(weights) if kind == "shifted" else weights
        elif name == "saliency":
            out[name] = saliency(model, pair)
        elif name == "leave-one-out":
            out[name] = leave_one_out(model, pair)
        else:
            raise ValueError(f"unknown alignment method {name!r}")
    return out


def method_names(model, heads: bool = True) -> list[str]:
    """Every method this model offers: each layer's attention (heads averaged, and each head if
    ``heads``), the same shifted, the gradient and leave-one-out."""
    layers = getattr(model, "decoder_layers", None)
    if layers is None:
        where = ["0"] if getattr(model, "attention", None) is not None else []
    else:
        n_heads = layers[0].cross_attn.n_heads
        where = [str(i) for i in range(len(layers))] + (
            [f"{i}:{h}" for i in range(len(layers)) for h in range(n_heads)] if heads else [])
    return ([f"attention:{w}" for w in where] + [f"shifted:{w}" for w in where]
            + ["saliency", "leave-one-out"])


# ----------------------------------------------------------------------------- words, links


def to_words(scores: torch.Tensor, pair: Pair) -> torch.Tensor:
    """(T, S) subword scores -> (target words, source words): a source word's subwords summed
    (attention is a distribution: a word gets its pieces' mass), a target word's averaged;
    eos and tags dropped."""
    src_owner, tgt_owner = torch.tensor(pair.src_words), torch.tensor(pair.tgt_words)
    n_src, n_tgt = int(src_owner.max()) + 1, int(tgt_owner.max()) + 1
    keep_s, keep_t = src_owner >= 0, tgt_owner >= 0
    s = scores[keep_t][:, keep_s]
    by_src = torch.zeros(s.size(0), n_src).index_add_(1, src_owner[keep_s], s)
    summed = torch.zeros(n_tgt, n_src).index_add_(0, tgt_owner[keep_t], by_src)
    counts = torch.bincount(tgt_owner[keep_t], minlength=n_tgt).clamp_min(1)
    return summed / counts[:, None]


RULES = ("target-argmax", "source-argmax", "intersect", "grow-diag", "union")


def links(words: torch.Tensor, rule: str) -> set[tuple[int, int]]:
    """Links (source word, target word), 0-indexed, from a (target, source) word matrix:
    each target word's best source word (``target-argmax``), each source word's best target
    word (``source-argmax``), both (``intersect``), either (``union``), or the intersection
    grown to neighbouring links of the union (``grow-diag``, Koehn et al. 2003)."""
    forward = {(int(s), t) for t, s in enumerate(words.argmax(1))}
    backward = {(s, int(t)) for s, t in enumerate(words.argmax(0))}
    if rule == "target-argmax":
        return forward
    if rule == "source-argmax":
        return backward
    if rule == "intersect":
        return forward & backward
    if rule == "union":
        return forward | backward
    if rule == "grow-diag":
        return grow_diag(forward & backward, forward | backward)
    raise ValueError(f"unknown link rule {rule!r}; known: {', '.join(RULES)}")


def grow_diag(start: set, candidates: set) -> set:
    """Add candidate links next to (also diagonally) a link, for a source or target word
    not yet aligned, until nothing changes."""
    links_, changed = set(start), True
    while changed:
        changed = False
        for s, t in sorted(links_):
            for ds in (-1, 0, 1):
                for dt in (-1, 0, 1):
                    new = (s + ds, t + dt)
                    if new in candidates and new not in links_ and (
                            all(a[0] != new[0] for a in links_) or all(a[1] != new[1] for a in links_)):
                        links_.add(new)
                        changed = True
    return links_


# ----------------------------------------------------------------------------- served

# The method and rule that translations' word links use (nmt translate --align, /translate
# "alignment": true, html tags). Chosen on the first 80 de-en gold dev pairs with
# models/transformer-de-en: attention:1 + grow-diag had AER 65.8, layers 0 and 2 70.2 and 68.4,
# leave-one-out 72.2, shifted:1 79.3 (the models know captions, not Europarl). The RNN has one
# attention.
SERVED = {"transformer": ("attention:1", "grow-diag"), "rnn": ("attention:0", "grow-diag")}
MAX_ALIGNED_TOKENS = 512  # longer texts get no links (the model's positions end at 1024)


def served_method(model) -> tuple[str, str]:
    arch = "rnn" if getattr(model, "decoder_layers", None) is None else "transformer"
    method, rule = SERVED[arch]
    if arch == "transformer" and int(method.split(":")[1]) >= len(model.decoder_layers):
        method = f"attention:{len(model.decoder_layers) - 1}"
    return method, rule


def word_links(model, tokenizer, source: str, translation: str, tag: int | None = None
               ) -> list[tuple[int, int]]:
    """Links (source word, translation word), words split on whitespace, 0-indexed and sorted,
    by the served method; [] when either side is empty or over MAX_ALIGNED_TOKENS subwords."""
    src_words, tgt_words = source.split(), translation.split()
    if not src_words or not tgt_words:
        return []
    pair = make_pair(tokenizer, src_words, tgt_words, tag)
    if max(len(pair.src_ids), len(pair.tgt_ids)) > MAX_ALIGNED_TOKENS:
        return []
    method, rule = served_method(model)
    scores = method_scores(model, pair, [method])[method]
    return sorted(links(to_words(scores, pair), rule))
