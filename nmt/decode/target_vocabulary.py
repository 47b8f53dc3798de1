"""Decoding that writes only the pieces a target language uses.

A joint vocabulary holds the pieces of every language the model reads and writes, but a decoder
writing English never needs a German piece: the English side of the de-en training data uses
3,857 of the 8,000 pieces. The output projection and the softmax after it run over the whole
vocabulary at every step of every hypothesis, so decoding restricted to the target language's
pieces does that part of each step at about half the cost (measured: bench/decode.py, README).
It is static, one list per target language made from the training data, so a sentence's
translation still never depends on its batch.

The list (``target_vocabulary.json`` in a model directory, by target language) holds every piece
of the tokenized training targets of that language, as the model was trained on them (augmented:
invented names and placeholders included), and every reserved piece: pad, bos, eos, unk, the
placeholders and the 256 UTF-8 byte pieces, so anything can still be written. The
log-probabilities are normalised over the list; a piece outside it was never a training target.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nmt.core.errors import NmtError
from nmt.core.files import atomic_write_text
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
from nmt.decode.search import Hypothesis
from nmt.models.directory import TARGET_VOCABULARIES, write_checksums
from nmt.text.passthrough import PLACEHOLDERS


def reserved_ids(tokenizer: Tokenizer) -> set[int]:
    """Special pieces, placeholders and byte pieces: always writable."""
    sp = tokenizer.sp
    placeholders = {sp.PieceToId(p) for p in PLACEHOLDERS} - {UNK_ID}
    return placeholders | {i for i in range(tokenizer.vocab_size)
                           if sp.IsControl(i) or sp.IsUnknown(i) or sp.IsByte(i)}


def store_vocabularies(store, tokenizer: Tokenizer) -> dict[str, list[int]]:
    """Each target language's pieces in a token store (nmt/data/store.py; counted while it was
    prepared), with the reserved ones; sorted ids."""
    reserved = reserved_ids(tokenizer)
    return {lang: sorted(set(ids) | reserved)
            for lang, ids in sorted(store.manifest["pieces"].items())}


def add_target_vocabularies(model_dirs: list[Path], store, tokenizer: Tokenizer,
                            log=print) -> None:
    """Give model directories without ``target_vocabulary.json`` the lists of the store they
    were trained on (checksums rewritten): release scores a model as it will decode."""
    missing = [Path(d) for d in model_dirs if not (Path(d) / TARGET_VOCABULARIES).is_file()]
    if not missing:
        return
    vocabularies = store_vocabularies(store, tokenizer)
    for folder in missing:
        write_target_vocabularies(folder, vocabularies)
        write_checksums(folder)
    log(f"added {TARGET_VOCABULARIES} to {', '.join(str(d) for d in missing)}: "
        + ", ".join(f"{lang} {len(ids)} of {tokenizer.vocab_size} pieces"
                    for lang, ids in vocabularies.items()))


def write_target_vocabularies(model_dir: Path, vocabularies: dict[str, list[int]]) -> None:
    atomic_write_text(Path(model_dir) / TARGET_VOCABULARIES, json.dumps(vocabularies) + "\n")


def read_target_vocabularies(model_dir: Path, vocab_size: int) -> dict[str, list[int]]:
    """The model directory's lists by target language; {} when it has none (older models)."""
    path = Path(model_dir) / TARGET_VOCABULARIES
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        lists = {str(lang): [int(i) for i in ids] for lang, ids in data.items()}
    except (ValueError, TypeError, AttributeError) as error:
        raise NmtError(f"{path}: not a list of piece ids by language ({error})") from None
    for lang, ids in lists.items():
        if ids != sorted(set(ids)) or not ids or ids[0] < 0 or ids[-1] >= vocab_size \
                or ids[:4] != [PAD_ID, BOS_ID, EOS_ID, UNK_ID]:
            raise NmtError(f"{path}: the {lang} list must be sorted ids from 0 to "
                           f"{vocab_size - 1}, starting with 0, 1, 2, 3")
    return lists


class TargetVocabulary:
    """A model that writes only the pieces ``ids``, driven by the search as the model itself.

    Tokens are numbered by their place in ``ids``; since the list starts with pad, bos, eos and
    unk, those keep their ids and the search needs to know nothing of the restriction.
    ``pieces`` turns a hypothesis back into vocabulary ids."""

    def __init__(self, model, ids: list[int]):
        self.model, self.id_list = model, list(ids)
        self.ids = torch.tensor(self.id_list)
        self.project = model.output_rows(self.ids)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor):
        return self.model.encode(src, src_mask)

    def decode_step(self, tokens, memory, state, need_attention: bool = False):
        return self.model.decode_step(self.ids[tokens], memory, state, need_attention,
                                      project=self.project)

    def decode_prefix(self, prefix: torch.Tensor, memory) -> torch.Tensor:
        return self.model.decode_prefix(self.ids[prefix], memory, project=self.project)

    def pieces(self, hypotheses: list[Hypothesis]) -> list[Hypothesis]:
        return [Hypothesis([self.id_list[t] for t in h.tokens], h.score) for h in hypotheses]
