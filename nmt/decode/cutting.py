"""Sentences cut before and after the search, and their pieces' translations joined back.

Before: a prepared sentence over ``decode.clause_split_tokens`` subwords is split into clauses,
one over ``decode.max_source_tokens`` is halved, each piece again while it is too long
(``plan_cut``). The pieces of every sentence go into one search pass.

After: a translation implausibly short for its source (under ``decode.min_length_ratio`` of its
subwords: a model that stopped early) is split at the clause boundary nearest its middle and its
clauses translated apart, at most ``MAX_CLAUSE_SPLITS`` times over (``search_pieces``).
nmt/text/pieces.py joins the pieces' translations back.
"""

from __future__ import annotations

from nmt.text.pieces import Cut, Translation, halve, join_parts, split_clauses

MAX_CLAUSE_SPLITS = 2  # a sentence is split at most twice over for a short translation
MIN_SPLIT_TOKENS = 16  # shorter sources are never split: their translations are legitimately terse


def plan_cut(translator, text: str, ids: list[int]) -> Cut:
    """How a prepared text (``ids``: its subwords) is cut, decided by its source alone. Planned
    before any search so that the pieces of every text go into one search pass."""
    d = translator.config.decode
    pieces = None
    if d.clause_split_tokens and len(ids) > d.clause_split_tokens:
        pieces = split_clauses(text, translator.src_lang, translator.tgt_lang)
    if pieces is None and len(ids) > d.max_source_tokens:
        pieces = halve(text)
    if pieces is None:
        return Cut(text, ids)
    encoded = translator.encode_sources([piece for piece, _ in pieces])
    return Cut(text, pieces=pieces, parts=[plan_cut(translator, piece, piece_ids)
                                           for (piece, _), piece_ids in zip(pieces, encoded)])


def translate_texts(translator, texts: list[str], beam_size: int | None, n_best: int,
                    depth: int = 0, attention: bool = False) -> list[Translation]:
    """Translations of prepared texts, each cut as ``plan_cut`` says and put back together."""
    cuts = [plan_cut(translator, text, ids)
            for text, ids in zip(texts, translator.encode_sources(texts))]
    leaves = [leaf for cut in cuts for leaf in cut.leaves()]
    done = iter(search_pieces(translator, [leaf.text for leaf in leaves],
                              [leaf.ids for leaf in leaves], beam_size, n_best, depth, attention))
    return [cut.assemble(done, translator.tgt_lang) for cut in cuts]


def search_pieces(translator, texts: list[str], ids: list[list[int]], beam_size: int | None,
                  n_best: int, depth: int, attention: bool) -> list[Translation]:
    """Translations of texts that fit the model, in one search pass; an implausibly short one
    translated again clause by clause."""
    out = [Translation("", 0.0, []) for _ in texts]
    fits = [i for i, t in enumerate(texts) if t]
    for i, h in zip(fits, translator.search_ids([ids[i] for i in fits], beam_size, n_best)):
        decoded = translator.tokenizer.decode([x.tokens for x in h])
        pairs = list(zip(decoded, (x.score for x in h)))
        aligned = translator.align_ids(ids[i], h[0].tokens) if attention else None
        out[i] = Translation(pairs[0][0], pairs[0][1], pairs[1:], len(h[0].tokens), aligned)
    retries = short_translations(translator, texts, ids, out, fits) if depth < MAX_CLAUSE_SPLITS else {}
    if retries:
        flat = [part for parts in retries.values() for part, _ in parts]
        done = translate_texts(translator, flat, beam_size, n_best, depth + 1, attention)
        at = 0
        for i, parts in retries.items():
            out[i] = join_parts(done[at:at + len(parts)], parts, translator.tgt_lang)
            at += len(parts)
    return out


def short_translations(translator, texts, ids, out, fits) -> dict[int, list[tuple[str, str]]]:
    """The clauses of each text whose translation is implausibly short, by index."""
    ratio, retries = translator.config.decode.min_length_ratio, {}
    for i in fits:
        if len(ids[i]) >= MIN_SPLIT_TOKENS and out[i].tokens < ratio * len(ids[i]):
            parts = split_clauses(texts[i], translator.src_lang, translator.tgt_lang)
            if parts is not None:
                retries[i] = parts
    return retries
