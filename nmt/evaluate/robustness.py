"""Robustness sets built from any split, and how a system does on them.

    long-k       k consecutive sentences joined into one (", und " / ", and "): BLEU and
                 hypothesis/reference length ratio, beside the same sentences translated one
                 by one and joined the same way;
    upper, lower the source in capitals / lowercase: BLEU on lowercased text (was the content
                 translated?) and the casing of the output;
    upper-word   the source in capitals but for one word typed as usual (its longest capitalised
                 word after the first, a noun or a name): still shouted, as above;
    pass         a token that must come out unchanged (number, date, price, code, link, e-mail
                 address, emoji, name) put in source and reference at the same place: the share
                 copied exactly, per kind, and BLEU;
    upper-pass   the same in a source in capitals (the token as it is): a link in lowercase
                 must not hide that the rest is shouted;
    acronym      an acronym ("EU", "NATO", "IKEA") put in source and reference as for pass: the
                 share copied exactly, and BLEU;
    upper-one    one word of the source (of four letters or more, not the first) in capitals,
                 as typed for emphasis: BLEU, against plain's;
    by length    BLEU and length ratio of the plain and joined sets together, by source subwords,
                 up to 100+: the long-range comparison of the models.

Sets are made from val to tune and from test_2016_flickr to report (``nmt evaluate --split``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nmt.data.augment import JOINERS, insert_span, join_clauses
from nmt.evaluate.scoring import bleu
from nmt.text.casing import cased_letters
from nmt.text.passthrough import ACRONYMS, PASS_THROUGH

LONG_KS = (2, 3, 4, 6)
LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 30), (31, 45), (46, 60), (61, 80), (81, 100),
                  (101, 100_000))


@dataclass(frozen=True)
class RobustSet:
    name: str
    sources: list[str]
    references: list[str]
    groups: list[list[int]] = field(default_factory=list)  # long-k: the sentences joined
    tokens: list[tuple[str, str]] = field(default_factory=list)  # pass: (kind, token) per pair


def long_set(src: list[str], tgt: list[str], src_lang: str, tgt_lang: str, k: int) -> RobustSet:
    groups = [list(range(i, i + k)) for i in range(0, len(src) - k + 1, k)]
    join = (JOINERS.get(src_lang, JOINERS["en"])[0], JOINERS.get(tgt_lang, JOINERS["en"])[0])
    return RobustSet(f"long-{k}",
                     [join_clauses([src[i] for i in g], src_lang, join[0]) for g in groups],
                     [join_clauses([tgt[i] for i in g], tgt_lang, join[1]) for g in groups],
                     groups=groups)


def upper_word_set(src: list[str], tgt: list[str]) -> RobustSet:
    sources = []
    for sentence in src:
        words = sentence.split(" ")
        capitalised = [i for i, w in enumerate(words) if i > 0 and w[:1].isupper()]
        kept = max(capitalised, key=lambda i: len(words[i]), default=None)
        sources.append(" ".join(w if i == kept else w.upper() for i, w in enumerate(words)))
    return RobustSet("upper-word", sources, list(tgt))


def pass_set(src: list[str], tgt: list[str], seed: int = 0, upper: bool = False) -> RobustSet:
    """``upper``: the source in capitals around its token, as typed by someone who shouts and
    pastes a link (no names: a shouted name is in capitals too)."""
    kinds = {kind: tokens for kind, tokens in PASS_THROUGH.items() if not (upper and kind == "name")}
    rng = random.Random(f"pass/{seed}" + ("/upper" if upper else ""))
    return _inserted("upper-pass" if upper else "pass", src, tgt, kinds, rng, upper)


def acronym_set(src: list[str], tgt: list[str], seed: int = 0) -> RobustSet:
    return _inserted("acronym", src, tgt, {"acronym": ACRONYMS}, random.Random(f"acronym/{seed}"))


def _inserted(name: str, src: list[str], tgt: list[str], kinds: dict[str, tuple[str, ...]],
              rng: random.Random, upper: bool = False) -> RobustSet:
    """A token of each kind in turn put in source and reference at the same place."""
    names, sources, references, tokens = list(kinds), [], [], []
    for i, (s, t) in enumerate(zip(src, tgt)):
        kind = names[i % len(names)]
        token = rng.choice(kinds[kind])
        s, t = insert_span(s.upper() if upper else s, t, token,
                           rng.choice(("start", "end", "paren")))
        sources.append(s)
        references.append(t)
        tokens.append((kind, token))
    return RobustSet(name, sources, references, tokens=tokens)


def upper_one_set(src: list[str], tgt: list[str], seed: int = 0) -> RobustSet:
    rng = random.Random(f"upper-one/{seed}")
    sources = []
    for sentence in src:
        words = sentence.split(" ")
        long = [i for i, w in enumerate(words) if i > 0 and len(cased_letters(w)) >= 4]
        chosen = rng.choice(long) if long else None
        sources.append(" ".join(w.upper() if i == chosen else w for i, w in enumerate(words)))
    return RobustSet("upper-one", sources, list(tgt))


def build_sets(src: list[str], tgt: list[str], src_lang: str, tgt_lang: str,
               seed: int = 0) -> list[RobustSet]:
    """The plain split and every robustness set made from it."""
    return ([RobustSet("plain", list(src), list(tgt))]
            + [long_set(src, tgt, src_lang, tgt_lang, k) for k in LONG_KS]
            + [RobustSet("upper", [s.upper() for s in src], list(tgt)), upper_word_set(src, tgt),
               RobustSet("lower", [s.lower() for s in src], list(tgt)),
               pass_set(src, tgt, seed), pass_set(src, tgt, seed, upper=True),
               acronym_set(src, tgt, seed), upper_one_set(src, tgt, seed)])


def _bleu_and_ratio(hyps: list[str], refs: list[str], lowercase: bool = False) -> dict:
    score, _ = bleu(hyps, refs, lowercase=lowercase)
    return {"bleu": round(score.score, 2),
            "length_ratio": round(score.sys_len / max(score.ref_len, 1), 3),
            # BLEU = BP * exp(mean log p_n): without the brevity penalty BP, what is left is
            # the n-gram precision, so two systems can be told apart by length and by content
            "bleu_without_bp": round(score.score / score.bp, 2) if score.bp > 0 else 0.0}


def casing(hyps: list[str]) -> dict:
    """Shares of outputs in capitals, and starting with a capital letter."""
    letters = [cased_letters(h) for h in hyps]
    cased = [ls for ls in letters if ls]
    n = max(len(cased), 1)
    return {"all_caps": round(sum(all(c.isupper() for c in ls) for ls in cased) / n, 3),
            "starts_upper": round(sum(ls[0].isupper() for ls in cased) / n, 3)}


def score_set(robust: RobustSet, hyps: list[str], plain_hyps: list[str], tgt_lang: str) -> dict:
    """Figures of one system on one set (``plain_hyps``: its translations of the plain set)."""
    row = {"set": robust.name, "pairs": len(hyps), **_bleu_and_ratio(hyps, robust.references),
           "bleu_lc": _bleu_and_ratio(hyps, robust.references, lowercase=True)["bleu"]}
    if robust.groups:
        joiner = JOINERS.get(tgt_lang, JOINERS["en"])[0]
        one_by_one = [join_clauses([plain_hyps[i] for i in g], tgt_lang, joiner)
                      for g in robust.groups]
        apart = _bleu_and_ratio(one_by_one, robust.references)
        row.update(one_by_one_bleu=apart["bleu"], one_by_one_length_ratio=apart["length_ratio"])
    if robust.name in ("upper", "upper-word", "lower", "upper-pass"):  # the token keeps its own case
        row.update(casing([h.replace(token, "") for h, (_, token) in zip(hyps, robust.tokens)]
                          if robust.tokens else hyps))
    if robust.tokens:
        copied: dict[str, list[bool]] = {}
        for (kind, token), hyp in zip(robust.tokens, hyps):
            copied.setdefault(kind, []).append(token in hyp)
        row["copied"] = round(sum(sum(v) for v in copied.values()) / max(len(hyps), 1), 3)
        row["copied_by_kind"] = {k: round(sum(v) / len(v), 3) for k, v in copied.items()}
    return row


def by_source_length(sets: list[RobustSet], outputs: dict[str, list[str]],
                     lengths: dict[str, list[int]]) -> list[dict]:
    """BLEU, length ratio and BLEU without its brevity penalty of the plain and long sets
    pooled, bucketed by source subwords."""
    pool = [(lengths[s.name][i], outputs[s.name][i], s.references[i])
            for s in sets if s.name == "plain" or s.groups for i in range(len(s.sources))]
    rows = []
    for low, high in LENGTH_BUCKETS:
        pick = [(h, r) for length, h, r in pool if low <= length <= high]
        name = f"{low}+" if high >= 100_000 else f"{low}-{high}"
        if not pick:
            rows.append({"bucket": name, "pairs": 0, "bleu": None, "length_ratio": None,
                         "bleu_without_bp": None})
            continue
        rows.append({"bucket": name, "pairs": len(pick),
                     **_bleu_and_ratio([h for h, _ in pick], [r for _, r in pick])})
    return rows


def source_lengths(tokenizer, sets: list[RobustSet]) -> dict[str, list[int]]:
    """Subwords of every source, by one tokenizer, so that all systems share the buckets."""
    return {s.name: [len(ids) for ids in tokenizer.encode(s.sources)] for s in sets}


def evaluate_robustness(translator, sets: list[RobustSet], beam_size: int,
                        lengths: dict[str, list[int]], log=print,
                        known: dict[str, list[str]] | None = None) -> dict:
    """Translate every set with ``translator`` (but those whose translations are ``known``, such
    as the plain split the report has already translated); figures per set and by length."""
    outputs = dict(known or {})
    for robust in sets:
        if robust.name in outputs:
            continue
        outputs[robust.name] = translator.translate(robust.sources, beam_size=beam_size)
        log(f"{translator.name}: robustness set {robust.name} ({len(robust.sources)} pairs)")
    tgt_lang = translator.tgt_lang
    rows = [score_set(s, outputs[s.name], outputs["plain"], tgt_lang) for s in sets]
    return {"sets": rows, "by_source_length": by_source_length(sets, outputs, lengths),
            "outputs": {s.name: outputs[s.name][:3] for s in sets}}
