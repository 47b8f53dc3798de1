"""From a DataConfig to tokenised training and validation sets.

The first run trains the joint SentencePiece model (unless the run already has one). The corpus
is encoded afresh on every start: all of Multi30k (augmented) encodes in about a second here,
where reading back an Arrow cache of the ids cost 6.7 s a side, so there is no cache.

A config with ``data.pairs`` trains one model for several directions: each pair is built from the
multi-parallel files and augmented on its own, and every source starts with the tag of its target
language (``<2en>``, one token), which is how the model knows what to produce. All pairs are
concatenated, so the directions are sampled in proportion to their pairs (uniformly for Multi30k,
whose languages all have the same 29,000 captions) and batches mix directions. The validation set
interleaves the directions row by row, so that a prefix of it (``train.eval_max_sentences``)
holds every direction alike; its BLEU is computed per direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nmt.core.config import directions
from nmt.core.errors import NmtError
from nmt.data.augment import augment, real_names
from nmt.data.corpus import ParallelData, drop_unusable, load_directions, load_split
from nmt.data.tokenizer import Tokenizer, train_tokenizer
from nmt.text.passthrough import PASS_THROUGH

# The teacher's translations of training sources (nmt/train/distill.py's distilled_targets:
# teacher, sources, src_lang, tgt_lang, run_dir, log): passed in by the layer that can translate.
Distill = Callable[..., list[str]]


@dataclass
class TokenizedSplit:
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    pairs: list[str] | None = None  # each row's direction ("de-en"), in a multilingual split


def augmented_train(config, log=print, run_dir: Path | None = None,
                    distill: Distill | None = None) -> ParallelData:
    """The training split with nmt/data/augment.py's transforms, as the config sets them; with
    ``data.teacher``, its targets are the teacher's translations (nmt/train/distill.py, kept in
    ``run_dir``), after the original pairs when ``data.keep_references``."""
    d = config.data
    train = load_split(d, d.train_split)
    log(f"train: {len(train)} pairs from {train.description}")
    if d.teacher:
        if distill is None:
            raise NmtError(f"data.teacher = {d.teacher!r}: distillation needs a translator "
                           "(nmt.train.distill.distilled_targets)")
        tgt = distill(d.teacher, train.src, d.src_lang, d.tgt_lang, run_dir, log)
        if d.keep_references:
            train = ParallelData(train.src + train.src, train.tgt + tgt,
                                 f"{train.description}, and again with targets from {d.teacher}")
        else:
            train = ParallelData(train.src, tgt, f"{train.description}, targets from {d.teacher}")
    src, tgt, counts = augment(train.src, train.tgt, d.src_lang, d.tgt_lang, d, config.train.seed,
                               training_names(d))
    if len(src) != len(train) or any(counts.values()):
        log("augmented: " + ", ".join(f"{v} {k}" for k, v in counts.items())
            + f"; {len(src)} training pairs")
    return ParallelData(src, tgt, train.description)


def prepare_data(config, run_dir: Path, log=print, distill: Distill | None = None
                 ) -> tuple[Tokenizer, TokenizedSplit, TokenizedSplit]:
    """Tokenizer, cleaned training split and validation split for a training run (``distill``:
    the teacher's translations, for a config with ``data.teacher``)."""
    if config.data.pairs:
        return prepare_multilingual(config, run_dir, log)
    d = config.data
    train = augmented_train(config, log, run_dir, distill)
    valid = load_split(d, d.valid_split)
    log(f"valid: {len(valid)} pairs from {valid.description}")
    tokenizer = vocabulary(config, run_dir, train.src + train.tgt, log)
    src_ids, tgt_ids = tokenizer.encode(train.src), tokenizer.encode(train.tgt)
    keep = drop_unusable(src_ids, tgt_ids, d.max_tokens_per_sentence, log=log)
    train_split = TokenizedSplit([train.src[i] for i in keep], [train.tgt[i] for i in keep],
                                 [src_ids[i] for i in keep], [tgt_ids[i] for i in keep])
    v_src, v_tgt = tokenizer.encode(valid.src), tokenizer.encode(valid.tgt)
    valid_split = TokenizedSplit(valid.src, valid.tgt, v_src, v_tgt)
    return tokenizer, train_split, valid_split


def vocabulary(config, run_dir: Path, texts: list[str], log=print) -> Tokenizer:
    """The run's SentencePiece model: trained on ``texts`` by the first start, then read."""
    d = config.data
    spm_path = run_dir / "spm.model"
    if spm_path.is_file():
        return Tokenizer(spm_path)
    log(f"training a joint {d.spm_model_type} SentencePiece vocabulary of {d.vocab_size}")
    return train_tokenizer(texts, spm_path, d.vocab_size, d.spm_model_type)


def prepare_multilingual(config, run_dir: Path, log=print
                         ) -> tuple[Tokenizer, TokenizedSplit, TokenizedSplit]:
    """Every direction of ``data.pairs``, augmented apart, sources tagged with their target."""
    d = config.data
    train, valid = load_directions(d, d.train_split), load_directions(d, d.valid_split)
    # The vocabulary sees each language's captions once, however many directions use them.
    languages = {lang: text for pair, data in train.items()
                 for lang, text in zip(pair.split("-"), (data.src, data.tgt))}
    tokenizer = vocabulary(config, run_dir, [t for text in languages.values() for t in text], log)
    rows = TokenizedSplit([], [], [], [], [])
    for (src_lang, tgt_lang), (pair, data) in zip(directions(d), train.items()):
        src, tgt, counts = augment(data.src, data.tgt, src_lang, tgt_lang, d,
                                   f"{config.train.seed}/{pair}", training_names(d))
        src_ids = tag_sources(tokenizer, tokenizer.encode(src), tgt_lang)
        tgt_ids = tokenizer.encode(tgt)
        keep = drop_unusable(src_ids, tgt_ids, d.max_tokens_per_sentence, log=log)
        log(f"train {pair}: {len(keep)} pairs from {data.description} ("
            + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
        extend(rows, [src[i] for i in keep], [tgt[i] for i in keep],
               [src_ids[i] for i in keep], [tgt_ids[i] for i in keep], pair)
    parts = []
    for (_, tgt_lang), (pair, data) in zip(directions(d), valid.items()):
        log(f"valid {pair}: {len(data)} pairs from {data.description}")
        parts.append([(s, t, si, ti, pair) for s, t, si, ti in zip(
            data.src, data.tgt, tag_sources(tokenizer, tokenizer.encode(data.src), tgt_lang),
            tokenizer.encode(data.tgt))])
    interleaved = [row for rows_at in zip(*parts) for row in rows_at]
    valid_split = TokenizedSplit(*map(list, zip(*interleaved)))
    return tokenizer, rows, valid_split


def training_names(d) -> tuple[list[str], list[str]] | None:
    """Real names for the name spans, when the config asks for them; the robustness set's own
    names are held out (nmt/evaluate/robustness.py measures copying names never seen in training)."""
    if not d.real_name_share:
        return None
    held_out = {word for name in PASS_THROUGH["name"] for word in name.split()}
    return real_names(held_out)


def tag_sources(tokenizer: Tokenizer, ids: list[list[int]], tgt_lang: str) -> list[list[int]]:
    """Source ids with the target language's tag first."""
    tag = tokenizer.language_tag(tgt_lang)
    return [[tag] + x for x in ids]


def extend(split: TokenizedSplit, src, tgt, src_ids, tgt_ids, pair: str) -> None:
    split.src_text += src
    split.tgt_text += tgt
    split.src_ids += src_ids
    split.tgt_ids += tgt_ids
    split.pairs += [pair] * len(src)
