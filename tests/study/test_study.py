"""``nmt study`` on a toy corpus: every experiment trains its models, writes every figure and
JSON field and its section of the page, and a second call resumes without training again."""

from __future__ import annotations

import json

from conftest import STORES

from nmt.study.report import EXPERIMENTS, planned, run_study
from nmt.study.runs import Budget, finished, run_dir

TINY = ("data.vocab_size=320", "data.dedupe=false", f"data.store_dir={STORES}",
        "model.d_model=32", "model.d_ff=64", "model.n_encoder_layers=1", "model.n_decoder_layers=1",
        "model.embed_dim=32", "model.hidden_size=32", "model.dropout=0.0", "train.max_tokens=1500",
        "train.precision=fp32", "train.threads=1", "train.device=cpu", "train.eval_max_sentences=10",
        "train.log_every_steps=2", "decode.max_len_offset=5", "decode.max_len_ratio=1.2")


def spread_ok(value: dict, seeds: int) -> bool:
    return set(value) == {"mean", "min", "max", "runs"} and len(value["runs"]) == seeds


def test_a_tiny_study_writes_every_figure_and_field_and_resumes(tmp_path, toy_corpus_dir):
    budget = Budget(steps=4, seeds=(1, 2), data=str(toy_corpus_dir), overrides=TINY,
                    probe_inputs=4, mask_sentences=6, divergence_sentences=6)
    runs, out, lines = tmp_path / "runs", tmp_path / "study", []
    run_study(EXPERIMENTS, budget, runs, out, log=lines.append)
    models = planned(EXPERIMENTS, budget)
    assert len(models) == 18 and all(finished(run_dir(runs, m, s)) for m, s in models)
    for name in ("long_range", "probe", "heads", "sqrt_dk", "sqrt_dk_training"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    long_range = json.loads((out / "long_range.json").read_text())
    assert list(long_range["models"]) == ["rnn-no-attention", "rnn-one-way",
                                          "rnn-bidirectional", "transformer-h4"]
    for model in long_range["models"].values():
        assert spread_ok(model["val_bleu"], 2) and spread_ok(model["test_bleu"], 2)
        assert set(model["joined"]) == {"2", "4", "8"}
        assert [row["bucket"] for row in model["by_length"]] == ["1-10", "11-20", "21-40",
                                                                 "41-80", "81+"]
        assert len(model["probe"]) == 4 * 3  # lengths x positions
        assert all(0 <= row["copy_rate"]["mean"] <= 1 for row in model["probe"])
    assert set(long_range["verdicts"]) == {"rnn_dilution", "transformer_long_range", "attention"}

    heads = json.loads((out / "heads.json").read_text())
    assert list(heads["models"]) == ["1", "2", "4", "8"]
    assert heads["models"]["1"]["divergence"]["mean"] is None and "masking" not in heads["models"]["1"]
    for h in ("2", "4", "8"):
        masking = heads["models"][h]["masking"]
        assert [len(costs) for costs in masking["costs"]] == [3 * int(h)] * 2  # 3 modules x h
        assert 0 <= heads["models"][h]["divergence"]["mean"] <= 1
    assert heads["verdict"]

    sqrt_dk = json.loads((out / "sqrt_dk.json").read_text())
    assert set(sqrt_dk["training"]["sizes"]) == {"64", "256"}
    for runs_of in sqrt_dk["training"]["sizes"].values():
        for label in ("scaled", "unscaled"):
            assert [len(c["train"]) > 0 for c in runs_of[label]["curves"]] == [True, True]
            assert spread_ok(runs_of[label]["val_bleu"], 2)
    assert sqrt_dk["model"]["layers"] and sqrt_dk["verdict"]

    page = (out / "README.md").read_text()
    for section in ("long_range", "heads", "sqrt_dk"):
        assert page.count(f"<!-- study:{section} -->") == 1
    assert "**Claim 1.**" in page and "**Claim 4.**" in page

    before = {p.name: p.read_bytes() for p in out.glob("*.json")}
    again = []
    run_study(EXPERIMENTS, budget, runs, out, log=again.append)
    assert "(0 to train)" in again[0] and not any(line.startswith("training") for line in again)
    assert {p.name: p.read_bytes() for p in out.glob("*.json")} == before
