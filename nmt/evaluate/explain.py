"""Does attention explain the translation? Every alignment method of a model on a gold set.

For each gold pair the model reads the gold target teacher-forced and each method of
nmt/decode/alignment.py scores (target word, source word); every link rule turns the scores into
links, scored with AER. Then the two papers' faithfulness checks:

    rank agreement   Kendall's tau between a layer's attention and the gradient, and between it
                     and leave-one-out, over the source words of each target word (Jain &
                     Wallace 2019: low agreement means attention is not what the output uses)
    ablation         one layer's cross-attention replaced by a permuted or a uniform
                     distribution: how much the model's predictions change (Wiegreffe & Pinter
                     2019: if nothing changes, the weights did not matter)
"""

from __future__ import annotations

import torch
from scipy.stats import kendalltau

from nmt.decode import alignment
from nmt.evaluate.alignment import GoldPair, alignment_scores


def pairs_of(translator, gold: list[GoldPair]) -> list[alignment.Pair]:
    return [alignment.make_pair(translator.tokenizer, g.src, g.tgt, translator.target_tag)
            for g in gold]


def word_matrices(model, pairs: list[alignment.Pair], methods: list[str], log=None) -> dict:
    """method -> one (target words, source words) matrix per pair."""
    out = {m: [] for m in methods}
    for n, pair in enumerate(pairs, 1):
        for name, scores in alignment.method_scores(model, pair, methods).items():
            out[name].append(alignment.to_words(scores, pair))
        if log and n % 50 == 0:
            log(f"  {n}/{len(pairs)} pairs")
    return out


def grid(matrices: dict, gold: list[GoldPair]) -> dict:
    """AER, precision and recall of every method under every link rule."""
    return {method: {rule: alignment_scores([alignment.links(m, rule) for m in words], gold)
                     for rule in alignment.RULES}
            for method, words in matrices.items()}


def best(table: dict) -> tuple[str, str, dict]:
    """(method, rule, scores) of the lowest AER."""
    return min(((m, r, s) for m, rules in table.items() for r, s in rules.items()),
               key=lambda x: x[2]["aer"])


def rank_agreement(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Mean Kendall tau-b between two methods' scores over the source words of each target
    word (rows with at least 3 source words and some variation)."""
    taus = []
    for x, y in zip(a, b):
        if x.size(1) < 3:
            continue
        for row_x, row_y in zip(x, y):
            tau = kendalltau(row_x.numpy(), row_y.numpy()).statistic
            if tau == tau:  # NaN when a row is constant
                taus.append(tau)
    return round(sum(taus) / max(1, len(taus)), 3)


def ablation(model, pairs: list[alignment.Pair], layer: int, how: str, seed: int = 0) -> dict:
    """Layer ``layer``'s cross-attention replaced (``permuted`` over the real source positions,
    or ``uniform`` over them): the share of target tokens whose most likely prediction changes,
    and the mean change of the gold token's log-probability."""
    generator = torch.Generator().manual_seed(seed)
    module = attention_module(model, layer)

    def replace(weights: torch.Tensor) -> torch.Tensor:
        real = weights > 0  # padding and masked keys have weight 0
        if how == "uniform":
            return real / real.sum(-1, keepdim=True)
        order = torch.randperm(weights.size(-1), generator=generator)
        return weights[..., order] * real / (weights[..., order] * real).sum(-1, keepdim=True).clamp_min(1e-9)

    changed = total = 0
    deltas = []
    for pair in pairs:
        src, mask, tgt_in, gold = alignment.tensors(pair)
        with torch.inference_mode():
            before = model(src, mask, tgt_in).float().log_softmax(-1)[0]
            module.weights_hook = replace
            try:
                after = model(src, mask, tgt_in).float().log_softmax(-1)[0]
            finally:
                module.weights_hook = None
        changed += int((before.argmax(-1) != after.argmax(-1)).sum())
        total += gold.numel()
        deltas.append((after.gather(1, gold[:, None]) - before.gather(1, gold[:, None])).mean())
    return {"layer": layer, "replacement": how,
            "top1_changed": round(changed / max(1, total), 4),
            "gold_log_prob_change": round(float(torch.stack(deltas).mean()), 4)}


def attention_module(model, layer: int):
    """A Transformer decoder layer's cross-attention, or the RNN's attention (layer 0)."""
    layers = getattr(model, "decoder_layers", None)
    return model.attention if layers is None else layers[layer].cross_attn
