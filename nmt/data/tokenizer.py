"""A joint SentencePiece vocabulary over source and target, with fixed special ids.

Ids 0-3 are always pad, bos, eos, unk, so models never need to ask the tokenizer for them; the
next ids are reserved for target-language tags (``<2en>``...), for multilingual models later, then
for the pass-through placeholders (nmt/text/passthrough.py). Digits are split one by one and any
character outside the vocabulary falls back to its UTF-8 bytes, so no input becomes ``<unk>``: an
emoji or a Chinese character comes back out of encode -> decode unchanged.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import sentencepiece as spm

from nmt.core.config import LANGUAGE_TAGS
from nmt.core.errors import NmtError
from nmt.core.files import atomic_write_bytes
from nmt.text.passthrough import PLACEHOLDERS

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3


class Tokenizer:
    """Encodes text to subword ids and back; thin, batched, over a SentencePiece model."""

    def __init__(self, model_path: str | Path):
        self.path = Path(model_path)
        if not self.path.is_file():
            raise NmtError(f"{self.path}: SentencePiece model not found")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(self.path))
        except (OSError, RuntimeError) as error:
            raise NmtError(f"{self.path}: not a SentencePiece model ({error})") from None
        if (self.sp.pad_id(), self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id()) != (
                PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            raise NmtError(f"{self.path}: special ids must be pad=0 bos=1 eos=2 unk=3")

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    @property
    def has_placeholders(self) -> bool:
        """Vocabularies made before placeholders existed read them as unknown characters."""
        return self.sp.PieceToId(PLACEHOLDERS[0]) != UNK_ID

    # One call per text: given a list, SentencePiece starts threads on every call, which cost
    # 140 us for a single sentence where encoding it takes 4 us, and more when the cores are
    # busy (the server tokenises each request it checks); a loop is as fast for 64 sentences.

    def language_tag(self, lang: str) -> int:
        """The id of the tag ``<2xx>`` that asks a multilingual model for language ``lang``."""
        tag = f"<2{lang}>"
        if tag not in LANGUAGE_TAGS:
            raise NmtError(f"no language tag for {lang!r}; the vocabulary has "
                           + ", ".join(LANGUAGE_TAGS))
        return self.sp.PieceToId(tag)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Subword ids of each text, without bos/eos."""
        return [self.sp.Encode(text) for text in texts]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """``encode`` of many texts in one call (preparing a corpus: one thread, as each
        worker process is one of the cores)."""
        return self.sp.Encode(list(texts), num_threads=1)

    def log_prob(self, word: str) -> float:
        """The unigram model's log-probability of ``word``'s best segmentation (a sum of piece
        scores; a piece outside the vocabulary counts as very unlikely)."""
        return sum(self.sp.GetScore(i) if i != UNK_ID else -30.0
                   for i in self.sp.Encode(word))

    def encode_pieces(self, texts: list[str]) -> list[list[str]]:
        return [self.sp.Encode(text, out_type=str) for text in texts]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [self.sp.Decode(list(map(int, seq))) for seq in ids]

    def id_to_piece(self, ids: list[int]) -> list[str]:
        return [self.sp.IdToPiece(int(i)) for i in ids]


def train_tokenizer(texts: list[str], model_path: str | Path, vocab_size: int = 8000,
                    model_type: str = "unigram", seed_sentences: int = 2_000_000) -> Tokenizer:
    """Train a joint SentencePiece model on ``texts`` (both languages) and write it atomically.

    Trained from memory: no temporary corpus file to leave behind if killed, and the model
    records no path of the machine it was trained on.
    """
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter([t for t in texts if t.strip()]), model_writer=model,
            vocab_size=vocab_size, model_type=model_type, character_coverage=1.0,
            byte_fallback=True, split_digits=True,
            hard_vocab_limit=False,  # a small corpus may have fewer pieces than asked for
            pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
            user_defined_symbols=list(LANGUAGE_TAGS) + list(PLACEHOLDERS),
            input_sentence_size=seed_sentences, shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1, minloglevel=2,
        )
    except RuntimeError as error:
        raise NmtError(f"SentencePiece training failed: {error}") from None
    atomic_write_bytes(model_path, model.getvalue())
    return Tokenizer(model_path)
