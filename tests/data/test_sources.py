"""Corpora read as streams (files, TSV, datasets, several with weights) and cleaned with counts."""

from __future__ import annotations

import json

import pytest
from conftest import write_lines

from nmt.core.errors import NmtError
from nmt.data.clean import Cleaner
from nmt.data.sources import Corpus, corpus_records, mixed

PAIRS = [("hallo welt", "hello world"), ("ein hund", "a dog"), ("zwei katzen", "two cats")]


def test_two_files_tsv_json_lines_and_parquet_give_the_same_pairs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_lines(tmp_path / "a.de.gz", [s for s, _ in PAIRS])
    write_lines(tmp_path / "a.en", [t for _, t in PAIRS])
    write_lines(tmp_path / "a.tsv", [f"{s}\t{t}" for s, t in PAIRS])
    write_lines(tmp_path / "a.jsonl", [json.dumps({"translation": {"de": s, "en": t}})
                                       for s, t in PAIRS])
    pq.write_table(pa.table({"de": [s for s, _ in PAIRS], "en": [t for _, t in PAIRS]}),
                   tmp_path / "a.parquet")
    for spec in (f"{tmp_path}/a.de.gz+{tmp_path}/a.en", f"{tmp_path}/a.tsv",
                 f"{tmp_path}/a.jsonl", f"{tmp_path}/a.parquet"):
        assert list(corpus_records(Corpus(spec), ("de", "en"))) == PAIRS, spec


def test_a_saved_dataset_folder_is_read(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"translation": [{"de": s, "en": t} for s, t in PAIRS]}) \
        .save_to_disk(str(tmp_path / "saved"))
    assert list(corpus_records(Corpus(str(tmp_path / "saved")), ("de", "en"))) == PAIRS


def test_bad_inputs_are_named(tmp_path):
    write_lines(tmp_path / "b.tsv", ["one\ttwo", "no tab here"])
    with pytest.raises(NmtError, match="b.tsv:2: expected 'source<TAB>target'"):
        list(corpus_records(Corpus(str(tmp_path / "b.tsv")), ("de", "en")))
    write_lines(tmp_path / "x.de", ["1", "2", "3"])
    write_lines(tmp_path / "x.en", ["1", "2"])
    with pytest.raises(NmtError, match="line counts differ: .*x.en ended after 2 lines"):
        list(corpus_records(Corpus(f"{tmp_path}/x.de+{tmp_path}/x.en"), ("de", "en")))
    write_lines(tmp_path / "c.jsonl", [json.dumps({"nl": "hoi", "en": "hi"})])
    with pytest.raises(NmtError, match="row 0 has no de / en text"):
        list(corpus_records(Corpus(str(tmp_path / "c.jsonl")), ("de", "en")))
    with pytest.raises(NmtError, match="weight after @ must be a number"):
        Corpus.parse("a.tsv@lots")


def test_weights_repeat_or_thin_a_corpus_and_corpora_interleave(tmp_path):
    write_lines(tmp_path / "a.tsv", [f"a{i}\tA{i}" for i in range(10)])
    write_lines(tmp_path / "b.tsv", [f"b{i}\tB{i}" for i in range(1000)])
    stream = list(mixed([Corpus.parse(f"{tmp_path}/a.tsv@2"),
                         Corpus.parse(f"{tmp_path}/b.tsv@0.5")], ("de", "en"), seed=1, block=4))
    a = [s for s, _ in stream if s.startswith("a")]
    b = [s for s, _ in stream if s.startswith("b")]
    assert a == [f"a{i}" for i in range(10) for _ in range(2)]  # every pair twice
    assert 430 < len(b) < 570 and len(set(b)) == len(b)  # a seeded half
    # blocks in proportion to the weights (8 and 2 here), not one corpus after the other
    assert [s[0] for s, _ in stream[:12]] == list("aaaaaaaabbaa")
    again = list(mixed([Corpus.parse(f"{tmp_path}/a.tsv@2"),
                        Corpus.parse(f"{tmp_path}/b.tsv@0.5")], ("de", "en"), seed=1, block=4))
    assert again == stream


def test_cleaning_drops_empty_misaligned_and_duplicate_pairs_and_counts_them():
    cleaner = Cleaner(max_length_ratio=3, dedupe=True)
    records = [("a b", "c d"), ("", "x"), ("a b", "c d"), ("one", "one two three four"),
               ("a b", "c e")]
    assert [cleaner.keep(r) for r in records] == [True, False, False, False, True]
    assert cleaner.dropped == {"empty": 1, "duplicate": 1, "length ratio": 1}
    assert cleaner.summary() == ("5 pairs read, 2 kept; dropped: 1 duplicate, 1 empty, "
                                 "1 length ratio")
    assert all(Cleaner(0, False).keep(r) for r in records if all(r))
