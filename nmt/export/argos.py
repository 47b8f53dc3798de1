"""A shipped Transformer as an Argos Translate package (``.argosmodel``), the format of the engine
behind LibreTranslate.

A package is a zip of one folder: ``metadata.json`` (the language pair), ``model/`` (the
CTranslate2 model of ``nmt.export.ct2``, int8 by default as Argos packages are),
``sentencepiece.model`` (nmt's vocabulary, which Argos applies itself), ``README.md`` (the model
card) and ``spacy/``: a blank spaCy pipeline of the source language, to which Argos adds its
rule-based sentencizer when run with ``ARGOS_CHUNK_TYPE=SPACY``, so the package splits sentences
offline. (Argos's default splitter downloads a model per language on first use.)

What nmt does around the model (pass-through spans, casing, clause splitting) is not in the
package: Argos translates the raw sentences.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from nmt import __version__
from nmt.core.errors import NmtError
from nmt.data.corpus import LANGUAGE_NAMES
from nmt.export.ct2 import SelfCheck, export_ctranslate2
from nmt.models.directory import read_model_config

ARGOS_VERSION = "1.9.0"  # the package format these packages follow


def require_spacy():
    try:
        import spacy
    except ImportError:
        raise NmtError("spaCy is not installed: pip install -e '.[export]'") from None
    return spacy


def metadata(name: str, src: str, tgt: str) -> dict:
    return {"package_version": __version__, "argos_version": ARGOS_VERSION,
            "from_code": src, "from_name": LANGUAGE_NAMES.get(src, src),
            "to_code": tgt, "to_name": LANGUAGE_NAMES.get(tgt, tgt),
            "type": "translate", "package_name": name,
            "description": f"nmt {name}: {LANGUAGE_NAMES.get(src, src)} to "
                           f"{LANGUAGE_NAMES.get(tgt, tgt)}, trained on Multi30k"}


def export_argos(model_dir: str | Path, out_file: str | Path, quantize: str = "int8",
                 check_sentences: list[str] | None = None) -> SelfCheck | None:
    """Write ``out_file`` (.argosmodel) atomically; returns the CTranslate2 model's self-check
    (see ``export_ctranslate2``), if sentences were given."""
    model_dir, out_file = Path(model_dir), Path(out_file)
    if out_file.suffix != ".argosmodel":
        raise NmtError(f"{out_file}: an Argos package file must end in .argosmodel")
    config = read_model_config(model_dir)
    src, tgt = config.data.src_lang, config.data.tgt_lang
    spacy = require_spacy()
    folder_name = f"translate-{src}_{tgt}-nmt"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".argos-", dir=out_file.parent) as tmp:
        package = Path(tmp) / folder_name
        package.mkdir()
        check = export_ctranslate2(model_dir, package / "model", quantize, check_sentences)
        shutil.copy(model_dir / "spm.model", package / "sentencepiece.model")
        if (model_dir / "README.md").is_file():
            shutil.copy(model_dir / "README.md", package / "README.md")
        spacy.blank(src).to_disk(package / "spacy")
        (package / "metadata.json").write_text(
            json.dumps(metadata(config.name, src, tgt), indent=2) + "\n", encoding="utf-8")
        staging = Path(tmp) / out_file.name
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(package.rglob("*")):
                archive.write(path, path.relative_to(Path(tmp)))
        staging.replace(out_file)
    return check
