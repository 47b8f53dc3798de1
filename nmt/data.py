"""From a DataConfig to tokenised training and validation sets.

The first run trains the joint SentencePiece model (unless the run already has one). The corpus
is encoded afresh on every start: all of Multi30k (augmented) encodes in about a second here,
where reading back an Arrow cache of the ids cost 6.7 s a side, so there is no cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmt.augment import augment
from nmt.corpus import ParallelData, drop_unusable, load_split
from nmt.tokenizer import Tokenizer, train_tokenizer


@dataclass
class TokenizedSplit:
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]


def augmented_train(config, log=print) -> ParallelData:
    """The training split with nmt/augment.py's transforms, as the config sets them."""
    d = config.data
    train = load_split(d, d.train_split)
    log(f"train: {len(train)} pairs from {train.description}")
    src, tgt, counts = augment(train.src, train.tgt, d.src_lang, d.tgt_lang, d, config.train.seed)
    if len(src) != len(train) or any(counts.values()):
        log("augmented: " + ", ".join(f"{v} {k}" for k, v in counts.items())
            + f"; {len(src)} training pairs")
    return ParallelData(src, tgt, train.description)


def prepare_data(config, run_dir: Path, log=print) -> tuple[Tokenizer, TokenizedSplit, TokenizedSplit]:
    """Tokenizer, cleaned training split and validation split for a training run."""
    d = config.data
    train = augmented_train(config, log)
    valid = load_split(d, d.valid_split)
    log(f"valid: {len(valid)} pairs from {valid.description}")
    spm_path = run_dir / "spm.model"
    if spm_path.is_file():
        tokenizer = Tokenizer(spm_path)
    else:
        log(f"training a joint {d.spm_model_type} SentencePiece vocabulary of {d.vocab_size}")
        tokenizer = train_tokenizer(train.src + train.tgt, spm_path, d.vocab_size, d.spm_model_type)
    src_ids, tgt_ids = tokenizer.encode(train.src), tokenizer.encode(train.tgt)
    keep = drop_unusable(src_ids, tgt_ids, d.max_tokens_per_sentence, log=log)
    train_split = TokenizedSplit([train.src[i] for i in keep], [train.tgt[i] for i in keep],
                                 [src_ids[i] for i in keep], [tgt_ids[i] for i in keep])
    v_src, v_tgt = tokenizer.encode(valid.src), tokenizer.encode(valid.tgt)
    valid_split = TokenizedSplit(valid.src, valid.tgt, v_src, v_tgt)
    return tokenizer, train_split, valid_split
