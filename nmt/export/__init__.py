"""Models for other engines: CTranslate2 (``ct2``) and Argos Translate / LibreTranslate
(``argos``, a package around the CTranslate2 model). Both need the ``export`` extra."""

from __future__ import annotations

from pathlib import Path

from nmt.core.errors import NmtError
from nmt.data.corpus import read_lines, split_file
from nmt.models.directory import read_model_config

# Where no corpus is at hand, the export is checked on these (Multi30k-like captions).
BUILT_IN = {
    "de": ["Ein Hund rennt durch den Schnee.", "Zwei Männer spielen Fußball auf einer Wiese.",
           "Eine Frau in einem roten Kleid sitzt auf einer Bank.",
           "Kinder spielen am Strand mit einem Ball.", "Ein Mann fährt Fahrrad in der Stadt."],
    "en": ["A dog runs through the snow.", "Two men are playing soccer on a field.",
           "A woman in a red dress sits on a bench.", "Children play with a ball on the beach.",
           "A man rides a bike in the city."],
    "fr": ["Un chien court dans la neige.", "Deux hommes jouent au football sur un terrain.",
           "Une femme en robe rouge est assise sur un banc."],
    "cs": ["Pes běží sněhem.", "Dva muži hrají fotbal na hřišti.",
           "Žena v červených šatech sedí na lavičce."],
}


def check_sentences(model_dir: Path, data: str, count: int) -> list[str]:
    """The first ``count`` val sentences of the model's source language, or built-in ones."""
    src = read_model_config(model_dir).data.src_lang
    if count <= 0:
        return []
    try:
        return read_lines(split_file(data, "val", src))[:count]
    except NmtError:  # no corpus here
        return BUILT_IN.get(src, BUILT_IN["en"])[:count]
