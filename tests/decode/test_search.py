"""Search on a decoder whose probabilities are set by hand (exact hypotheses and scores), and
equivalences on real models: beam 1 is greedy, cached equals uncached, the vectorised search
equals the previous implementation (tests/reference_search.py)."""

import math
from dataclasses import dataclass

import pytest
import torch
from reference_search import reference_beam

from nmt.core.config import ModelConfig
from nmt.data.tokenizer import EOS_ID, PAD_ID
from nmt.decode.search import (
    CHUNK,
    UncachedDecoder,
    beam_search,
    greedy_search,
    length_penalty,
    row_max,
    row_topk,
)
from nmt.models import build_model

A, B, C = 4, 5, 6
VOCAB = 7


@dataclass
class Prefix:
    tokens: torch.Tensor

    def select(self, indices):
        return Prefix(self.tokens.index_select(0, indices))


class FakeDecoder:
    """Next-token probabilities from a table keyed by the prefix (after bos)."""

    def __init__(self, table):
        self.table = table

    def encode(self, src, src_mask):
        return Prefix(torch.zeros(src.size(0), 0, dtype=torch.long))

    def decode_step(self, tokens, memory, state, need_attention=False):
        prefix = tokens[:, None] if state is None else torch.cat([state.tokens, tokens[:, None]], 1)
        rows = []
        for p in prefix.tolist():
            probs = torch.full((VOCAB,), 1e-9)
            for token, prob in self.table.get(tuple(p[1:]), {EOS_ID: 1.0}).items():
                probs[token] = prob
            rows.append((probs / probs.sum()).log())
        return torch.stack(rows), Prefix(prefix)


TABLE = {
    (): {A: 0.6, B: 0.4},
    (A,): {EOS_ID: 0.1, C: 0.9 * 0.5, B: 0.9 * 0.5},
    (B,): {C: 1.0},
    (A, C): {EOS_ID: 1.0},
    (A, B): {EOS_ID: 1.0},
    (B, C): {EOS_ID: 1.0},
}


def src(n=1):
    tokens = torch.full((n, 3), A)
    return tokens, tokens != PAD_ID


def test_beam_search_exact_hypotheses_and_scores():
    hyps = beam_search(FakeDecoder(TABLE), *src(), beam_size=2, n_best=2, alpha=0.0)[0]
    # B C eos: 0.4 * 1 * 1 = 0.4 beats A C eos and A B eos (0.6 * 0.45 = 0.27 each)
    assert hyps[0].tokens == [B, C]
    assert hyps[0].score == pytest.approx(math.log(0.4), abs=1e-5)
    assert hyps[1].tokens in ([A, C], [A, B])
    assert hyps[1].score == pytest.approx(math.log(0.27), abs=1e-5)


def test_greedy_takes_the_locally_best_path():
    hyps = greedy_search(FakeDecoder(TABLE), *src())[0]
    assert hyps[0].tokens in ([A, C], [A, B])  # greedy takes A (0.6) and misses B C
    assert hyps[0].score == pytest.approx(math.log(0.27), abs=1e-5)


def test_length_penalty_prefers_longer_when_alpha_is_high():
    table = {(): {A: 0.5, EOS_ID: 0.5}, (A,): {B: 0.9, EOS_ID: 0.1}, (A, B): {EOS_ID: 1.0}}
    short = beam_search(FakeDecoder(table), *src(), beam_size=2, n_best=2, alpha=0.0)[0]
    assert short[0].tokens == []  # 0.5 against 0.45
    long = beam_search(FakeDecoder(table), *src(), beam_size=2, n_best=2, alpha=2.0)[0]
    assert long[0].tokens == [A, B]
    assert long[0].score == pytest.approx(math.log(0.45) / length_penalty(3, 2.0), abs=1e-5)


def test_max_length_is_enforced():
    table = {(): {A: 1.0}}
    for n in range(1, 40):
        table[(A,) * n] = {A: 1.0}
    hyps = beam_search(FakeDecoder(table), *src(), beam_size=2, max_len_ratio=1.0,
                       max_len_offset=2)[0]
    assert len(hyps[0].tokens) == 3 + 2 - 1  # eos takes the last place


MODELS = {
    "transformer": ModelConfig(d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                               d_ff=64),
    "rnn": ModelConfig(arch="rnn", embed_dim=16, hidden_size=32),
}


def random_batch(n=6, vocab=40):
    torch.manual_seed(3)
    tokens = torch.randint(4, vocab, (n, 8))
    tokens[0, 4:] = PAD_ID
    tokens[1, 6:] = PAD_ID
    return tokens, tokens != PAD_ID


@pytest.mark.parametrize("arch", MODELS)
def test_beam_one_equals_greedy(arch):
    """Beam search with one beam against an independent reference: the whole prefix re-read at
    every step (no cache), argmax taken one sentence at a time."""
    torch.manual_seed(0)
    model = build_model(MODELS[arch], 40).eval()
    src, src_mask = random_batch()
    limits = (src_mask.sum(dim=1).float() * 1.5).long() + 10
    beam = beam_search(model, src, src_mask, beam_size=1, n_best=1)
    with torch.inference_mode():
        for row, hyps in enumerate(beam):
            memory = model.encode(src[row:row + 1], src_mask[row:row + 1])
            prefix, total = [1], 0.0  # bos
            while True:
                log_probs = model.decode_prefix(torch.tensor([prefix]), memory)[0]
                log_probs[PAD_ID] = log_probs[1] = float("-inf")
                if len(prefix) >= int(limits[row]):
                    token = EOS_ID
                else:
                    token = int(log_probs.argmax())
                total += float(log_probs[token])
                if token == EOS_ID:
                    break
                prefix.append(token)
            assert hyps[0].tokens == prefix[1:]
            assert hyps[0].score == pytest.approx(total, abs=1e-4)


@pytest.mark.parametrize("arch", MODELS)
def test_cached_equals_uncached(arch):
    torch.manual_seed(0)
    model = build_model(MODELS[arch], 40).eval()
    batch = random_batch()
    for beam_size in (1, 4):
        cached = beam_search(model, *batch, beam_size=beam_size, n_best=1)
        uncached = beam_search(UncachedDecoder(model), *batch, beam_size=beam_size, n_best=1)
        assert [h[0].tokens for h in cached] == [h[0].tokens for h in uncached]
        for a, b in zip(cached, uncached):
            assert a[0].score == pytest.approx(b[0].score, abs=1e-4)


def test_batching_does_not_change_results():
    torch.manual_seed(0)
    model = build_model(MODELS["transformer"], 40).eval()
    tokens, mask = random_batch()
    together = beam_search(model, tokens, mask, beam_size=3, n_best=2)
    for i in range(tokens.size(0)):
        width = int(mask[i].sum())
        alone = beam_search(model, tokens[i : i + 1, :width], mask[i : i + 1, :width],
                            beam_size=3, n_best=2)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]


def assert_same_hypotheses(ours, reference):
    for mine, theirs in zip(ours, reference, strict=True):
        assert [h.tokens for h in mine] == [h.tokens for h in theirs]
        assert [h.score for h in mine] == pytest.approx([h.score for h in theirs], abs=1e-5)


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("beam_size", [1, 2, 3, 4, 5])
def test_vectorised_search_equals_the_reference(arch, beam_size):
    """The tensor bookkeeping against the previous per-hypothesis Python loop
    (tests/reference_search.py), every n-best, on random models and sentences."""
    torch.manual_seed(beam_size)
    model = build_model(MODELS[arch], 40).eval()
    src, src_mask = random_batch(n=9)
    for n_best in range(1, beam_size + 1):
        for alpha in (0.0, 1.0):
            ours = beam_search(model, src, src_mask, beam_size, n_best, alpha)
            assert_same_hypotheses(ours, reference_beam(model, src, src_mask, beam_size, n_best,
                                                        alpha))
            assert all(len(h) == n_best for h in ours)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_vectorised_search_equals_the_reference_at_the_length_limit(beam_size):
    """Limits of 1 to 4 tokens: every sentence is cut by the limit, the first ones at step 1."""
    torch.manual_seed(7)
    model = build_model(MODELS["transformer"], 40).eval()
    src, src_mask = random_batch(n=9)
    for offset in (1, 2, 4):
        ours = beam_search(model, src, src_mask, beam_size, 1, 0.6, 0.0, offset)
        assert all(len(h[0].tokens) <= offset - 1 for h in ours)
        assert_same_hypotheses(ours, reference_beam(model, src, src_mask, beam_size, 1, 0.6,
                                                    0.0, offset))


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_greedy_equals_the_reference_however_late_finished_rows_are_dropped(arch, share,
                                                                            monkeypatch):
    """Finished rows decode on, writing nowhere, until they are ``COMPACT_SHARE`` of the batch:
    dropped at once (0), at a quarter, or never (1). The hypotheses and scores are the
    reference's in every case, limits that cut sentences at step 1 included."""
    import nmt.decode.search

    monkeypatch.setattr(nmt.decode.search, "COMPACT_SHARE", share)
    torch.manual_seed(11)
    model = build_model(MODELS[arch], 40).eval()
    src, src_mask = random_batch(n=9)
    for offset in (1, 3, 10):
        assert_same_hypotheses(greedy_search(model, src, src_mask, 1.5, offset),
                               reference_beam(model, src, src_mask, 1, 1, 0.6, 1.5, offset))


def test_vectorised_search_equals_the_reference_when_eos_comes_first():
    """eos is the likeliest first token: most beams end at step 1."""
    table = {(): {EOS_ID: 0.7, A: 0.25, B: 0.05}, (A,): {EOS_ID: 0.6, C: 0.4}, (B,): {EOS_ID: 1.0},
             (A, C): {EOS_ID: 1.0}}
    for beam_size in (1, 2, 3, 4):
        for n_best in range(1, beam_size + 1):
            ours = beam_search(FakeDecoder(table), *src(3), beam_size, n_best, alpha=1.0)
            assert ours[0][0].tokens == []
            assert_same_hypotheses(ours, reference_beam(FakeDecoder(table), *src(3), beam_size,
                                                        n_best, alpha=1.0))


@pytest.mark.parametrize("width", [CHUNK * 9, CHUNK * 12 + 37, 4030])
@pytest.mark.parametrize("rows", [1, 16, 70])
def test_chunked_row_max_and_topk_equal_torch(width, rows):
    """Chunked maxima against torch's own: the same values and indices, a last chunk that is
    shorter or absent, rows whose best sits in that last chunk, rows of -inf but one."""
    torch.manual_seed(width + rows)
    x = torch.randn(rows, width) * 4
    x[rows // 2, -1] = 100.0  # the maximum in the tail (or the last full chunk)
    x[-1] = float("-inf")
    x[-1, 5] = -2.0  # like a row that must end: only eos is allowed
    values, indices = row_max(x)
    expected = x.max(dim=-1)
    assert torch.equal(values, expected.values) and torch.equal(indices, expected.indices)
    for k in (1, 4, 8):
        values, indices = row_topk(x, k)
        expected = x.topk(k, dim=-1)
        assert torch.equal(values, expected.values)
        finite = expected.values > float("-inf")  # the order among equal -inf is not specified
        assert torch.equal(indices[finite], expected.indices[finite])
        assert torch.equal(x.gather(1, indices), values)


def test_row_max_takes_the_first_of_equal_maxima():
    """Ties go to the lowest index, as torch's max and argmax do: across chunks and inside one."""
    x = torch.zeros(20, CHUNK * 5 + 3)
    x[:, 7] = x[:, CHUNK * 3 + 1] = x[:, -1] = 1.0  # three equal maxima, one in the tail
    x[1:, 7] = 0.0
    x[2:, CHUNK * 3 + 1] = 0.0
    indices = row_max(x)[1]
    assert indices[0] == 7 and indices[1] == CHUNK * 3 + 1 and (indices[2:] == x.size(1) - 1).all()


@pytest.mark.parametrize("beam_size", [1, 4])
def test_vectorised_search_equals_the_reference_with_a_large_vocabulary(beam_size):
    """A vocabulary and a batch large enough for the chunked maximum and top-k."""
    torch.manual_seed(11)
    vocab = CHUNK * 12 + 5
    model = build_model(MODELS["transformer"], vocab).eval()
    src, src_mask = random_batch(n=20, vocab=vocab)
    assert_same_hypotheses(beam_search(model, src, src_mask, beam_size, 1, 0.6),
                           reference_beam(model, src, src_mask, beam_size, 1, 0.6))
