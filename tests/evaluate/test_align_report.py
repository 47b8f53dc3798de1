"""``nmt align`` on a toy gold set: every method of the model scored, a tiny Transformer that
translates the toy corpus word for word aligns it well, and the faithfulness checks run."""

from __future__ import annotations

import json
import random

from conftest import LEXICON, toy_pair

from nmt.cli import main
from nmt.evaluate.alignment import alignment_scores, read_gold


def toy_gold(folder, n: int = 30):
    """Toy pairs, tokenized, with their word links: each German word to its English word(s)."""
    rng = random.Random(7)
    lines, links = [], []
    for _ in range(n):
        src, _ = toy_pair(rng)
        words = src.rstrip(".").lower().split()
        tgt, pairs = [], []
        for i, word in enumerate(words):
            for english in LEXICON[word].split():
                pairs.append(f"{i + 1}-{len(tgt) + 1}")
                tgt.append(english)
        pairs.append(f"{len(words) + 1}-{len(tgt) + 1}")  # the full stop
        lines.append(" ".join(words + ["."]) + " ||| " + " ".join(tgt + ["."]))
        links.append(" ".join(pairs))
    (folder / "toy.txt").write_text("\n".join(lines) + "\n")
    (folder / "toy.talp").write_text("\n".join(links) + "\n")
    return folder / "toy"


def test_nmt_align_scores_every_method_and_the_model_aligns_a_word_for_word_corpus(
        tmp_path, trained_model_dir):
    gold = toy_gold(tmp_path)
    out = tmp_path / "report"
    main(["align", "--model", str(trained_model_dir), "--gold", str(gold), "--pair", "de-en",
          "--no-baseline", "--out", str(out)])
    report = json.loads((out / "toy.json").read_text())
    model = report["models"][trained_model_dir.name]
    methods = set(model["methods"])
    assert {"attention:0", "shifted:0", "saliency", "leave-one-out", "attention:0:1"} <= methods
    # a tiny one-layer model: far from perfect, far better than chance
    chance = alignment_scores([{(rng.randrange(len(g.src)), j) for j in range(len(g.tgt))}
                               for rng in [random.Random(0)] for g in read_gold(gold)],
                              read_gold(gold))["aer"]
    assert model["best"]["scores"]["aer"] < 40 < 60 < chance
    assert model["served"]["method"] in methods and model["tags"]["lost_or_repeated"] == 0
    assert -1 <= model["agreement"]["saliency"] <= 1
    assert {(a["layer"], a["replacement"]) for a in model["ablation"]} == {
        (0, "permuted"), (0, "uniform")}
    assert "| attention:0 |" in (out / "toy.md").read_text()
