"""From a DataConfig to tokenised training and validation sets, cached on disk with ``datasets``.

The first run trains the joint SentencePiece model (unless the run already has one) and encodes
the corpus; the encoded ids are saved as an Arrow dataset keyed by the text and vocabulary
checksums, so the next run (or a resumed one) starts at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from nmt.corpus import ParallelData, drop_unusable, load_split
from nmt.tokenizer import Tokenizer, train_tokenizer


@dataclass
class TokenizedSplit:
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]


def _digest(data: ParallelData, spm_path: Path) -> str:
    digest = hashlib.sha256(spm_path.read_bytes())
    for line in data.src + ["\0"] + data.tgt:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def encode_cached(data: ParallelData, tokenizer: Tokenizer, cache_dir: Path) -> tuple[list, list]:
    """Subword ids of both sides, from the Arrow cache when this text and vocabulary were seen."""
    import datasets  # imported here: it is slow to import and only training needs it

    datasets.disable_progress_bars()
    path = cache_dir / f"tokenized-{_digest(data, tokenizer.path)}"
    if path.is_dir():
        table = datasets.load_from_disk(str(path))
        return table["src_ids"], table["tgt_ids"]
    src_ids, tgt_ids = tokenizer.encode(data.src), tokenizer.encode(data.tgt)
    cache_dir.mkdir(parents=True, exist_ok=True)
    table = datasets.Dataset.from_dict({"src_ids": src_ids, "tgt_ids": tgt_ids})
    staging = path.with_name(path.name + ".tmp")
    table.save_to_disk(str(staging))
    staging.rename(path)
    return src_ids, tgt_ids


def prepare_data(config, run_dir: Path, log=print) -> tuple[Tokenizer, TokenizedSplit, TokenizedSplit]:
    """Tokenizer, cleaned training split and validation split for a training run."""
    d = config.data
    train = load_split(d, d.train_split)
    valid = load_split(d, d.valid_split)
    log(f"train: {len(train)} pairs from {train.description}")
    log(f"valid: {len(valid)} pairs from {valid.description}")
    spm_path = run_dir / "spm.model"
    if spm_path.is_file():
        tokenizer = Tokenizer(spm_path)
    else:
        log(f"training a joint {d.spm_model_type} SentencePiece vocabulary of {d.vocab_size}")
        tokenizer = train_tokenizer(train.src + train.tgt, spm_path, d.vocab_size, d.spm_model_type)
    src_ids, tgt_ids = encode_cached(train, tokenizer, run_dir / "cache")
    keep = drop_unusable(src_ids, tgt_ids, d.max_tokens_per_sentence, log=log)
    train_split = TokenizedSplit([train.src[i] for i in keep], [train.tgt[i] for i in keep],
                                 [src_ids[i] for i in keep], [tgt_ids[i] for i in keep])
    v_src, v_tgt = tokenizer.encode(valid.src), tokenizer.encode(valid.tgt)
    valid_split = TokenizedSplit(valid.src, valid.tgt, v_src, v_tgt)
    return tokenizer, train_split, valid_split
