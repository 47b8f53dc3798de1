"""The Transformer's int8 decoding step in C (nmt/decode/native_step.py) against the PyTorch step it
replaces: the same log-probabilities to rounding, the same hypotheses from every search, a
sentence alone as in its batch, caches that outgrow their first allocation, beams reordered
through the table of ancestors."""

import pytest
import torch
from reference_search import reference_beam

from nmt.core.config import ModelConfig
from nmt.data.tokenizer import PAD_ID
from nmt.decode import kernels
from nmt.decode.native_step import FIRST_CAPACITY, NativeStep
from nmt.decode.quantize import quantize
from nmt.decode.search import beam_search, greedy_search
from nmt.decode.target_vocabulary import TargetVocabulary
from nmt.models import build_model

# d_model 32: every product on AVX-512 VNNI; 64: AMX tiles from four rows (k a multiple of 64)
CONFIGS = {
    "vnni": ModelConfig(d_model=32, n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=64),
    "amx": ModelConfig(d_model=64, n_heads=4, n_encoder_layers=1, n_decoder_layers=2, d_ff=128),
}
VOCAB = 40


@pytest.fixture(params=list(CONFIGS))
def model(request):
    library = kernels.load()
    if library is None or library.product_level == 0:
        pytest.skip("no C compiler or no AVX-512 VNNI here: int8 steps run in PyTorch")
    torch.manual_seed(5)
    model = quantize(build_model(CONFIGS[request.param], VOCAB), "int8")
    assert model.native_step is not None
    return model


def random_batch(n=7, length=9, seed=3):
    torch.manual_seed(seed)
    tokens = torch.randint(4, VOCAB, (n, length))
    tokens[0, 4:] = PAD_ID
    tokens[1, 6:] = PAD_ID
    return tokens, tokens != PAD_ID


def both(model, search):
    """search(model) with the native step, then with PyTorch's."""
    native = model.native_step
    try:
        with_native = search(model)
        model.native_step = None
        return with_native, search(model)
    finally:
        model.native_step = native


def assert_same(ours, theirs, tolerance=5e-3):
    """The same tokens; scores to within the int8 flips a long hypothesis meets (about 1e-3)."""
    for mine, reference in zip(ours, theirs, strict=True):
        assert [h.tokens for h in mine] == [h.tokens for h in reference]
        assert [h.score for h in mine] == pytest.approx([h.score for h in reference], abs=tolerance)


@torch.inference_mode()
def test_steps_give_pytorchs_log_probabilities_while_beams_reorder(model):
    """40 steps (past the caches' first 32 positions), beams permuted and sentences dropped on
    the way: each step's log-probabilities are PyTorch's to rounding. (A float that differs in
    its last bit can round to the neighbouring int8 at a rounding boundary: such a flip moves
    the one row of the one step it happens in, by a few hundredths; a wrong cache or ancestor
    would move most rows from then on.)"""
    src, mask = random_batch(n=3)
    memory = model.encode(src, mask)
    k = 3
    tokens = torch.randint(4, VOCAB, (3 * k,))
    states = {"native": None, "torch": None}
    generator = torch.Generator().manual_seed(0)
    row_steps, flipped = 0, 0
    for step in range(FIRST_CAPACITY + 8):
        native, states["native"] = model.native_step(tokens, memory, states["native"])
        expected, states["torch"] = _torch_step(model, tokens, memory, states["torch"])
        difference = (native - expected).abs().max(dim=1).values
        assert difference.max() < 0.1
        row_steps, flipped = row_steps + difference.numel(), flipped + int((difference > 1e-4).sum())
        rows = tokens.size(0)
        # each sentence's beams continue from random beams of the same sentence
        parents = (torch.arange(rows) // k) * k + torch.randint(0, k, (rows,), generator=generator)
        if step == 10:  # the middle sentence is done
            keep = torch.tensor([0, 2])
            memory = memory.select(keep)
            parents = parents.view(-1, k)[keep].reshape(-1)
        states = {name: state.select(parents) for name, state in states.items()}
        tokens = torch.randint(4, VOCAB, (parents.size(0),), generator=generator)
    assert row_steps == 11 * 9 + 29 * 6 and flipped <= 2


def _torch_step(model, tokens, memory, state):
    native, model.native_step = model.native_step, None
    try:
        return model.decode_step(tokens, memory, state)
    finally:
        model.native_step = native


@pytest.mark.parametrize("beam_size", [1, 2, 3, 4, 5])
def test_every_search_finds_pytorchs_hypotheses(model, beam_size):
    src, mask = random_batch()
    for n_best in sorted({1, beam_size}):
        for alpha, offset in ((0.6, 10), (1.0, 2), (0.0, 40)):  # 2: cut at the limit; 40: long
            assert_same(*both(model, lambda m: beam_search(m, src, mask, beam_size, n_best, alpha,
                                                            1.5, offset)))


def test_greedy_drops_finished_rows_as_pytorch_does(model):
    src, mask = random_batch(n=11)
    native, pytorch = both(model, lambda m: greedy_search(m, src, mask, 1.5, 5))
    assert_same(native, pytorch)
    assert_same(native, reference_beam(model, src, mask, 1, 1, 0.6, 1.5, 5))


def test_a_sentence_decodes_alone_as_in_its_batch(model):
    """Each row's step is computed on its own: nothing of its batch-mates enters it."""
    src, mask = random_batch()
    together = beam_search(model, src, mask, beam_size=4, n_best=2)
    for i in range(src.size(0)):
        width = int(mask[i].sum())
        alone = beam_search(model, src[i:i + 1, :width], mask[i:i + 1, :width], beam_size=4,
                            n_best=2)
        assert_same(alone, together[i:i + 1], tolerance=1e-5)


def test_a_restricted_vocabulary_uses_its_own_rows(model):
    ids = [0, 1, 2, 3] + list(range(10, 30))
    restricted = TargetVocabulary(model, ids)
    assert model.native_step.covers(restricted.project)
    src, mask = random_batch()
    native, pytorch = both(model, lambda m: beam_search(restricted, src, mask, beam_size=3))
    assert_same(native, pytorch)
    assert all(t in ids for h in native for t in restricted.pieces(h)[0].tokens)


def test_attention_weights_are_asked_of_pytorchs_step(model):
    src, mask = random_batch(n=2)
    memory = model.encode(src, mask)
    _, state = model.decode_step(torch.tensor([1, 1]), memory, None, need_attention=True)
    assert state.attention.shape == (2, src.size(1))


def test_models_it_does_not_cover_decode_in_pytorch():
    torch.manual_seed(0)
    narrow_heads = ModelConfig(d_model=32, n_heads=4, n_encoder_layers=1, n_decoder_layers=1, d_ff=64)
    post_norm = ModelConfig(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=64,
                            pre_norm=False)
    rnn = ModelConfig(arch="rnn", embed_dim=16, hidden_size=32)
    for config in (narrow_heads, post_norm, rnn):
        model = quantize(build_model(config, VOCAB), "int8")
        assert getattr(model, "native_step", None) is None
        src, mask = random_batch(n=2)
        assert len(beam_search(model, src, mask, beam_size=2)) == 2
    fp32 = quantize(build_model(CONFIGS["vnni"], VOCAB), "none")
    assert fp32.native_step is None and NativeStep.build(fp32) is None
