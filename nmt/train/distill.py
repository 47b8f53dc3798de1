"""Sequence-level knowledge distillation (Kim & Rush, 2016): a student trained on a teacher's
translations of the training sources instead of the human references.

``data.teacher`` names a model directory; before the first step of a run, the teacher translates
the training split's sources with its own shipped decode settings (beam search, int8), and those
translations replace the references. Augmentation (nmt/data/augment.py) then works on the distilled
pairs as it would on the originals, so joined examples, recased sources and pass-through spans
are built the same way. The translations are kept in the run folder (``distilled.<tgt>``): a
resumed run and ``nmt release`` read the very same targets, which exact resume needs. With
``data.keep_references`` the references stay as well: each source is trained twice, with its
reference and with the teacher's translation (nmt/data/prepare.py puts the two sets one after the other).

Why: a teacher trained longer (the multilingual model, over six directions) translates
consistently, one way of saying each thing, which makes easier targets than the references and
lets a small student within a fixed budget come close to its teacher. Keeping the references
beside them gives two targets per source at no cost in updates. docs/TUNING.md gives what each
was worth on val.
"""

from __future__ import annotations

from pathlib import Path

from nmt.core.errors import NmtError
from nmt.core.files import atomic_write_text
from nmt.data.corpus import read_lines


def distilled_path(run_dir: Path, tgt_lang: str) -> Path:
    return run_dir / f"distilled.{tgt_lang}"


def distilled_targets(teacher: str | Path, sources: list[str], src_lang: str, tgt_lang: str,
                      run_dir: Path | None, log=print) -> list[str]:
    """The teacher's translations of ``sources`` (read back from ``run_dir`` when a run already
    made them)."""
    cache = distilled_path(run_dir, tgt_lang) if run_dir is not None else None
    if cache is not None and cache.is_file():
        targets = read_lines(cache)
        if len(targets) != len(sources):
            raise NmtError(f"{cache}: {len(targets)} lines for {len(sources)} training sources; "
                           "it belongs to another corpus (delete it to translate again)")
        log(f"distilled targets: {cache}")
        return targets
    translator = load_teacher(teacher, src_lang, tgt_lang)
    log(f"distilling: {teacher} translates {len(sources)} training sources ({src_lang}-{tgt_lang})")
    targets = translator.translate(sources)
    if cache is not None:
        atomic_write_text(cache, "".join(line + "\n" for line in targets))
    return targets


def load_teacher(teacher: str | Path, src_lang: str, tgt_lang: str):
    """The teacher's translator for the direction; its own errors (no such direction, a damaged
    file) are named as the teacher's."""
    from nmt.decode.translator import Translator

    try:  # threads: the run's own setting, already made
        return Translator.load(teacher, pair=(src_lang, tgt_lang))
    except NmtError as error:
        raise NmtError(f"data.teacher: {error}") from None
