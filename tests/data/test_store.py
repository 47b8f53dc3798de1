"""The token store: what preparation writes, what training reads, and damage named on load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_config, toy_corpus, write_lines

import nmt.data.prepare as prepare
import nmt.data.store as store_module
from nmt.core.errors import NmtError
from nmt.data.batching import StorePlan
from nmt.data.prepare import prepare_store
from nmt.data.store import TokenStore, token_dtype
from nmt.data.tokenizer import Tokenizer

QUIET = dict(log=lambda *a, **k: None)


def own_config(tmp_path, n=500, **data):
    src, tgt = toy_corpus(n, seed=3)
    src = [f"{s} {i}" for i, s in enumerate(src)]  # every pair distinct: nothing deduplicated
    write_lines(tmp_path / "c.de", src)
    write_lines(tmp_path / "c.en", tgt)
    return tiny_config(tmp_path, data=dict(src_file=str(tmp_path / "c.de"),
                                           tgt_file=str(tmp_path / "c.en"), heldout_pairs=10,
                                           store_dir=str(tmp_path / "stores"),
                                           shard_pairs=100, **data))  # several shards


def test_the_store_holds_exactly_the_tokenizers_ids(tmp_path):
    config = own_config(tmp_path)
    folder = prepare_store(config, **QUIET)
    store, tokenizer = TokenStore(folder), Tokenizer(folder / "spm.model")
    assert len(store.shards) == 5 and token_dtype(tokenizer.vocab_size) == np.uint16
    held = {line for split in ("val", "test") for line in
            (folder / "heldout" / f"{split}.de").read_text().splitlines()}
    assert len(held) == 20  # 10 + 10 drawn, kept out of training
    src_text = [s for s in (tmp_path / "c.de").read_text().splitlines() if s not in held]
    tgt_text = [t for s, t in zip((tmp_path / "c.de").read_text().splitlines(),
                                  (tmp_path / "c.en").read_text().splitlines()) if s not in held]
    src, tgt = store.pairs(range(len(store)))
    assert src == tokenizer.encode(src_text) and tgt == tokenizer.encode(tgt_text)
    assert store.manifest["pieces"]["en"] == sorted({i for t in tgt for i in t})


def test_an_epoch_covers_every_pair_once_and_resumes_at_any_batch(tmp_path):
    store = TokenStore(prepare_store(own_config(tmp_path), **QUIET))
    plan = StorePlan(store, max_tokens=300, seed=4)
    for epoch in (0, 1):
        batches = list(plan.epoch(epoch))
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(store)))
        assert plan.batches_per_epoch() == len(batches)
        for start in (0, 1, 7, len(batches) - 1):
            assert list(StorePlan(store, 300, seed=4).epoch(epoch, start)) == batches[start:]
            assert list(plan.epoch(epoch, start)) == batches[start:]  # shards skipped by count
    assert list(plan.epoch(0)) != list(plan.epoch(1))  # each epoch its own order


def test_two_ranks_read_disjoint_rows_that_cover_each_batch(tmp_path):
    store = TokenStore(prepare_store(own_config(tmp_path), **QUIET))
    plan = StorePlan(store, max_tokens=300, seed=4)
    for indices in list(plan.epoch(0))[:20]:
        whole, total = plan.batch(indices)
        first, total0 = plan.batch(indices, rank=0, world_size=2)
        second, total1 = plan.batch(indices, rank=1, world_size=2)
        assert not set(first.indices) & set(second.indices)
        assert sorted(first.indices + second.indices) == sorted(indices)
        assert total0 == total1 == total == whole.n_tgt_tokens  # the loss's common normaliser
        assert first.size + second.size == whole.size
        assert first.n_tgt_tokens + second.n_tgt_tokens == whole.n_tgt_tokens


def test_a_flipped_byte_in_a_shard_is_named_on_load(tmp_path):
    folder = prepare_store(own_config(tmp_path), **QUIET)
    path = folder / "00002.tgt.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    store = TokenStore(folder)
    store.pairs([0])  # shards not touched are not read
    with pytest.raises(NmtError, match="00002.tgt.npy: damaged"):
        store.pairs([int(store.starts[2])])


def test_an_interrupted_preparation_resumes_after_its_last_shard(tmp_path,
                                                                 monkeypatch):
    config = own_config(tmp_path)
    real_write, written = store_module.write_shard, []

    def dying_write(folder, name, *args):
        if len(written) == 2:
            raise KeyboardInterrupt  # killed while writing the third shard
        written.append(name)
        return real_write(folder, name, *args)

    monkeypatch.setattr(prepare, "write_shard", dying_write)
    with pytest.raises(KeyboardInterrupt):
        prepare_store(config, **QUIET)
    folder = prepare.store_folder(config)
    partial = json.loads((folder / "partial.json").read_text())
    assert [e["name"] for e in partial["shards"]] == ["00000", "00001"]
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob("0000[01].*.npy")}
    monkeypatch.setattr(prepare, "write_shard", lambda folder, name, *a: (
        written.append(name), real_write(folder, name, *a))[1])
    prepare_store(config, **QUIET)
    assert written[2:] == ["00002", "00003", "00004"]  # only what was missing
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("0000[01].*.npy")} == kept
    resumed = TokenStore(folder).pairs(range(400))
    fresh = own_config(tmp_path / "again")
    assert TokenStore(prepare_store(fresh, **QUIET)).pairs(range(400)) == resumed


def test_a_prepared_store_is_read_not_prepared_again(tmp_path, monkeypatch):
    config = own_config(tmp_path)
    folder = prepare_store(config, **QUIET)
    monkeypatch.setattr(prepare, "write_shards", lambda *a: pytest.fail("prepared again"))
    assert prepare_store(config, **QUIET) == folder
    (tmp_path / "c.en").write_text((tmp_path / "c.en").read_text())  # touched: new inputs
    assert prepare.store_folder(config) != folder
