"""Decoding restricted to the target language's pieces (nmt/decode/target_vocabulary.py)."""

import json
import shutil

import pytest
import torch
from test_search import MODELS, random_batch

from nmt.data.tokenizer import PAD_ID
from nmt.decode.quantize import Int8Linear, quantize
from nmt.decode.search import UncachedDecoder, beam_search, greedy_search
from nmt.decode.target_vocabulary import TargetVocabulary, read_target_vocabularies
from nmt.models import build_model
from nmt.models.directory import TARGET_VOCABULARIES

SOME = [0, 1, 2, 3] + list(range(5, 40, 3))  # the special ids and a part of the rest


def test_int8_rows_are_the_whole_layers_outputs_bit_for_bit():
    torch.manual_seed(0)
    layer = Int8Linear(torch.nn.Linear(16, 40))
    x = torch.randn(9, 16)
    ids = torch.tensor(SOME)
    assert torch.equal(layer.rows(ids)(x), layer(x)[:, ids])


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("precision", ["none", "int8"])
def test_restricted_search_writes_only_the_list_and_equals_its_references(arch, precision):
    torch.manual_seed(0)
    model = quantize(build_model(MODELS[arch], 40), precision)
    restricted = TargetVocabulary(model, SOME)
    tokens, mask = random_batch()
    for beam_size in (1, 3):
        cached = [restricted.pieces(h) for h in beam_search(restricted, tokens, mask, beam_size)]
        uncached = [restricted.pieces(h) for h in
                    beam_search(UncachedDecoder(restricted), tokens, mask, beam_size)]
        assert [h[0].tokens for h in cached] == [h[0].tokens for h in uncached]
        assert all(t in SOME for h in cached for t in h[0].tokens)
        for i in range(tokens.size(0)):  # a sentence decodes the same alone as in its batch
            width = int(mask[i].sum())
            alone = beam_search(restricted, tokens[i:i + 1, :width], mask[i:i + 1, :width],
                                beam_size)
            assert restricted.pieces(alone[0])[0].tokens == cached[i][0].tokens
    # The whole vocabulary as the list: the model's own greedy output, ids and scores.
    whole = TargetVocabulary(model, list(range(40)))
    assert [h[0] for h in greedy_search(whole, tokens, mask)] == \
        [h[0] for h in greedy_search(model, tokens, mask)]


def test_training_keeps_each_target_languages_pieces(trained_model_dir):
    from nmt.data.tokenizer import Tokenizer
    from nmt.decode.translator import Translator

    lists = read_target_vocabularies(trained_model_dir, 400)
    assert list(lists) == ["en"]
    tokenizer = Tokenizer(trained_model_dir / "spm.model")
    english = tokenizer.encode(["a dog runs .", "two men"])  # toy corpus targets
    assert all(i in lists["en"] for ids in english for i in ids)
    assert len(lists["en"]) < tokenizer.vocab_size
    translator = Translator.load(trained_model_dir)
    assert isinstance(translator.decoder, TargetVocabulary)
    restricted = translator.translate(["ein hund rennt .", "zwei männer"])
    full = translator.with_options(restrict_output=False)
    assert full.decoder is full.model
    assert full.translate(["ein hund rennt .", "zwei männer"]) == restricted


def test_a_damaged_list_is_named(trained_model_dir, tmp_path):
    from nmt.core.errors import NmtError
    from nmt.decode.translator import Translator

    model = shutil.copytree(trained_model_dir, tmp_path / "model")
    (model / TARGET_VOCABULARIES).write_text(json.dumps({"en": [3, 2, 1]}))
    with pytest.raises(NmtError, match=f"{TARGET_VOCABULARIES}: the en list must be sorted"):
        read_target_vocabularies(model, 400)
    (model / TARGET_VOCABULARIES).write_text("{not json")
    with pytest.raises(NmtError, match="target_vocabulary.json"):
        Translator.load(model)


def test_release_gives_an_older_run_its_lists(trained_model_dir, toy_corpus_dir, tmp_path):
    from nmt.models.directory import verify_checksums, write_checksums
    from nmt.train.release import release

    run = tmp_path / "run"
    shutil.copytree(trained_model_dir, run / "best")
    shutil.copyfile(trained_model_dir.parent / "data.json", run / "data.json")  # its token store
    kept = read_target_vocabularies(run / "best", 400)
    (run / "best" / TARGET_VOCABULARIES).unlink()  # as a run made before the lists were kept
    write_checksums(run / "best")
    to = release(run, tmp_path / "models" / "tiny", data=str(toy_corpus_dir), beam_size=2,
                 log=lambda *a: None, penalties=(1.0,), clause_splits=(0,))
    assert read_target_vocabularies(to, 400) == kept  # made again from the run's token store
    verify_checksums(run / "best")
    verify_checksums(to)
    assert PAD_ID in kept["en"]
