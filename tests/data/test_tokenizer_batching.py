import torch
from conftest import toy_corpus

from nmt.data.batching import BatchPlan, plan_batches
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer


def test_special_ids_and_round_trip(toy_tokenizer):
    sp = toy_tokenizer.sp
    assert (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()) == (PAD_ID, BOS_ID, EOS_ID, UNK_ID)
    assert sp.PieceToId("<2en>") > UNK_ID  # language tags are reserved pieces
    texts = ["Ein kleiner hund läuft im park.", "Eine katze."]
    assert toy_tokenizer.decode(toy_tokenizer.encode(texts)) == texts


def test_reloads(toy_tokenizer):
    again = Tokenizer(toy_tokenizer.path)
    assert again.encode(["Ein hund."]) == toy_tokenizer.encode(["Ein hund."])


def test_batches_respect_the_budget_and_cover_everything():
    src = [[5] * n for n in range(1, 60)] * 5
    tgt = [[6] * (n % 17 + 1) for n in range(len(src))]
    batches = plan_batches([len(s) for s in src], [len(t) for t in tgt], 300, seed=3, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(src)))
    for b in batches:
        width = max(len(src[i]) for i in b) + 1 + max(len(tgt[i]) for i in b) + 1
        assert len(b) == 1 or len(b) * width <= 300


def test_order_is_reproducible_and_changes_by_epoch():
    src, tgt = toy_corpus(300)
    lengths = [len(s.split()) for s in src], [len(t.split()) for t in tgt]
    first = plan_batches(*lengths, 200, seed=1, epoch=0)
    assert first == plan_batches(*lengths, 200, seed=1, epoch=0)
    assert first != plan_batches(*lengths, 200, seed=1, epoch=1)


def test_batch_tensors_and_padding(toy_tokenizer):
    src, tgt = toy_corpus(200)
    plan = BatchPlan(toy_tokenizer.encode(src), toy_tokenizer.encode(tgt), 400, seed=1)
    indices = plan.epoch(0)[0]
    batch = plan.batch(indices)
    assert batch.tgt_in[:, 0].eq(BOS_ID).all()
    assert torch.equal(batch.src_mask, batch.src != PAD_ID)
    first = plan.tgt_ids[indices[0]]
    assert batch.tgt_out[0, : len(first) + 1].tolist() == first + [EOS_ID]
    assert batch.n_tgt_tokens == int((batch.tgt_out != PAD_ID).sum())
    assert 0.0 <= plan.padding_fraction() < 0.3
    moved = batch.to(torch.device("meta"))  # every tensor moves; the counts stay
    assert {t.device.type for t in (moved.src, moved.src_mask, moved.tgt_in, moved.tgt_out)} == {"meta"}
    assert (moved.n_src_tokens, moved.n_tgt_tokens, moved.indices) == \
        (batch.n_src_tokens, batch.n_tgt_tokens, batch.indices)
