"""nmt export: the same weights in CTranslate2 give the same translations; an Argos package of them
installs into Argos Translate and translates; models with no such runtime are refused cleanly."""

import json
import os
import subprocess
import sys
import zipfile

import pytest
from conftest import tiny_config, toy_corpus

from nmt.core.errors import NmtError

ctranslate2 = pytest.importorskip("ctranslate2", reason="the export extra is not installed "
                                  "(pip install -e '.[export]'; CI installs it)")


def test_ctranslate2_translates_as_nmt_does(trained_model_dir, tmp_path):
    from nmt.decode.translator import Translator
    from nmt.export.ct2 import export_ctranslate2

    sources, _ = toy_corpus(40, seed=5)
    check = export_ctranslate2(trained_model_dir, tmp_path / "ct2", "none", sources)
    assert check.equal == check.sentences == 40  # greedy, token for token
    # Beam search through the public API of both, on the exported folder alone
    ours = Translator.load(trained_model_dir, quantize="none")
    theirs = ctranslate2.Translator(str(tmp_path / "ct2"), compute_type="float32")
    pieces = ours.tokenizer.encode_pieces(sources)
    results = theirs.translate_batch(pieces, beam_size=2, max_decoding_length=64)
    decoded = ours.tokenizer.sp.DecodePieces([r.hypotheses[0] for r in results])
    assert decoded == ours.translate(sources, beam_size=2)
    assert {p.name for p in (tmp_path / "ct2").iterdir()} >= {"model.bin", "config.json", "spm.model"}


def test_an_rnn_model_is_refused_and_nothing_is_written(tmp_path, toy_tokenizer):
    from nmt.export.ct2 import export_ctranslate2
    from nmt.models import build_model
    from nmt.models.directory import save_model_dir

    config = tiny_config(tmp_path, arch="rnn")
    model_dir = tmp_path / "rnn"
    save_model_dir(model_dir, build_model(config.model, toy_tokenizer.vocab_size), config,
                   toy_tokenizer.path)
    with pytest.raises(NmtError, match="RNN model has no runtime"):
        export_ctranslate2(model_dir, tmp_path / "out", "none")
    assert not (tmp_path / "out").exists()
    from nmt.cli import main

    assert main(["export", "--format", "argos", str(model_dir), str(tmp_path / "x.argosmodel")]) == 2
    assert not list(tmp_path.glob("*.argosmodel")) and not list(tmp_path.glob(".argos-*"))


ARGOS_TRANSLATE = """
import os, sys
import argostranslate.package, argostranslate.translate
argostranslate.package.install_from_path(sys.argv[1])
print(argostranslate.translate.translate(sys.argv[2], "de", "en"))
"""


def test_an_argos_package_installs_and_translates_offline(trained_model_dir, tmp_path):
    pytest.importorskip("argostranslate", reason="the export extra is not installed")
    from nmt.decode.translator import Translator
    from nmt.export.argos import export_argos

    package = tmp_path / "de_en.argosmodel"
    export_argos(trained_model_dir, package)
    names = zipfile.ZipFile(package).namelist()
    folder = names[0].split("/")[0]
    assert {f"{folder}/metadata.json", f"{folder}/sentencepiece.model",
            f"{folder}/model/model.bin", f"{folder}/spacy/meta.json"} <= set(names)
    metadata = json.loads(zipfile.ZipFile(package).read(f"{folder}/metadata.json"))
    assert (metadata["from_code"], metadata["to_code"], metadata["type"]) == ("de", "en", "translate")

    home = tmp_path / "argos-home"  # a fresh Argos installation: its own data, cache and config
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_CONFIG_HOME=str(home / "config"),
               ARGOS_CHUNK_TYPE="SPACY", ARGOS_DEVICE_TYPE="cpu")
    sentence = "Ein hund läuft im schnee."  # as the toy corpus writes it
    done = subprocess.run([sys.executable, "-c", ARGOS_TRANSLATE, str(package), sentence],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (home / "data" / "argos-translate" / "packages" / folder / "metadata.json").is_file()
    ours = Translator.load(trained_model_dir).translate([sentence])[0]
    assert done.stdout.strip() == ours == "A dog runs in the snow."
