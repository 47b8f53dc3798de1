"""Alignment error rate against gold (Och & Ney 2003) and the gold files' format."""

from __future__ import annotations

import pytest

from nmt.core.errors import NmtError
from nmt.evaluate.alignment import alignment_scores, parse_links, pharaoh, read_gold


def test_aer_of_a_known_prediction_equals_the_hand_computation(tmp_path):
    (tmp_path / "g.txt").write_text("a b c ||| x y z\n")
    (tmp_path / "g.talp").write_text("1-1 2-2 3p3 2p3\n")
    gold = read_gold(tmp_path / "g")
    assert gold[0].sure == {(0, 0), (1, 1)}
    assert gold[0].possible == {(0, 0), (1, 1), (2, 2), (1, 2)}
    # A = {0-0, 1-2, 2-1}: A n S = {0-0} (1), A n P = {0-0, 1-2} (2), |A| = 3, |S| = 2
    scores = alignment_scores([{(0, 0), (1, 2), (2, 1)}], gold)
    assert scores["aer"] == round(100 * (1 - (1 + 2) / (3 + 2)), 2) == 40.0
    assert scores["precision"] == round(100 * 2 / 3, 2) and scores["recall"] == 50.0
    perfect = alignment_scores([{(0, 0), (1, 1)}], gold)
    assert perfect["aer"] == 0.0  # the sure links alone: nothing missed, nothing wrong


def test_a_malformed_gold_set_is_named_in_one_line(tmp_path):
    (tmp_path / "g.txt").write_text("a b ||| x y\n")
    (tmp_path / "g.talp").write_text("1-1 3-1\n")
    with pytest.raises(NmtError, match=r"g.talp:1: a link points past the sentence"):
        read_gold(tmp_path / "g")
    with pytest.raises(NmtError, match="is not a link"):
        parse_links("1-x", "here")
    with pytest.raises(NmtError, match="file not found"):
        read_gold(tmp_path / "missing")


def test_links_print_as_pharaoh_sorted_source_target():
    assert pharaoh({(2, 1), (0, 0), (1, 2)}) == "0-0 1-2 2-1"
