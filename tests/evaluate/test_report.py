"""`nmt evaluate`: the report and its figures, and bad input refused with nothing written."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, write_lines

from nmt.data.corpus import read_lines


def evaluate(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nmt", "evaluate", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def report(trained_model_dir, toy_corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "toy"
    references = read_lines(toy_corpus_dir / "test_2016_flickr.en.gz")
    copy = write_lines(out.parent / "copy.txt", references)  # a perfect "system"
    half = write_lines(out.parent / "half.txt",  # and one that gets every other sentence wrong
                       [r if i % 2 else "a a a a" for i, r in enumerate(references)])
    result = evaluate("--model", str(trained_model_dir), "--hyp", f"oracle={copy}",
                      "--hyp", f"half={half}", "--data", str(toy_corpus_dir), "--baseline",
                      "half", "--beam", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_report_files_and_contents(report):
    assert {p.name for p in report.iterdir()} >= {"report.md", "report.json", "by_length.png",
                                                  "best.hyp.txt", "oracle.hyp.txt"}
    data = json.loads((report / "report.json").read_text())
    oracle, model, half = (data["systems"][n] for n in ("oracle", "best", "half"))
    assert oracle["bleu"] == 100.0 and oracle["bleu"] >= model["bleu"] > half["bleu"]
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in model["bleu_signature"]
    assert model["significance"]["bleu"]["ci95"] >= 0
    assert oracle["significance"]["bleu"]["p_bs"] < 0.05 and "p_ar" in oracle["significance"]["bleu"]
    assert "p_bs" not in half["significance"]["bleu"]  # the baseline is not tested against itself
    assert sum(b["sentences"] for b in model["by_length"]) == data["sentences"]
    assert model["info"]["parameters"] > 0 and model["info"]["sentences_per_second"] > 0
    markdown = (report / "report.md").read_text()
    assert "| oracle | 100.00 |" in markdown and "one of the longest" in markdown
    assert (report / "by_length.png").read_bytes()[:4] == b"\x89PNG"


def test_report_has_the_robustness_sets(report):
    data = json.loads((report / "report.json").read_text())
    robust = data["robustness"]["best"]  # models only: a hypothesis file has no robustness sets
    names = [row["set"] for row in robust["sets"]]
    assert names == ["plain", "long-2", "long-3", "long-4", "long-6", "upper", "upper-word",
                     "lower", "pass", "upper-pass", "acronym", "upper-one"]
    long3 = robust["sets"][2]
    assert long3["pairs"] == data["sentences"] // 3 and "one_by_one_bleu" in long3
    upper_pass = robust["sets"][names.index("upper-pass")]
    assert 0 <= upper_pass["copied"] <= 1 and "emoji" in upper_pass["copied_by_kind"]
    assert 0 <= robust["sets"][names.index("acronym")]["copied"] <= 1
    assert robust["sets"][5]["all_caps"] > 0.9  # capitals in, capitals out
    assert sum(b["pairs"] for b in robust["by_source_length"]) == sum(
        row["pairs"] for row in robust["sets"][:5])
    assert all(b["bleu_without_bp"] >= b["bleu"] for b in robust["by_source_length"] if b["pairs"])
    assert (report / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Robustness" in (report / "report.md").read_text()


def test_the_report_says_why_the_baseline_leads_a_length_bucket():
    """Behind the baseline with as high an n-gram precision: shorter, not worse."""
    from nmt.evaluate.report import explain_baseline_leads

    def buckets(*rows):
        return {"by_source_length": [{"bucket": b, "pairs": 10, "bleu": bleu, "bleu_without_bp": nbp}
                                     for b, bleu, nbp in rows]}

    robustness = {
        "rnn": buckets(("1-10", 40.0, 40.0), ("46-60", 44.0, 44.2), ("61-80", 44.0, 44.5)),
        "short": buckets(("1-10", 41.0, 41.0), ("46-60", 43.0, 45.0), ("61-80", 42.0, 43.0)),
        "ahead": buckets(("1-10", 41.0, 41.0), ("46-60", 45.0, 45.0), ("61-80", 44.0, 44.0)),
    }
    short, ahead = explain_baseline_leads(robustness, "rnn")
    assert "below rnn in 2 length bucket(s)" in short
    assert "in 46-60 (BLEU -1.00, without BP +0.80) its n-gram precision is as high" in short
    assert "in 61-80 (BLEU -2.00, without BP -1.50) its n-gram precision is lower too" in short
    assert ahead == "- ahead is at or above rnn in every length bucket."


def test_the_summary_row_carries_the_robustness_figures(report):
    from nmt.evaluate.report import render_summary, summarize

    data = json.loads((report / "report.json").read_text())
    rows = {r["system"]: r for r in summarize({"de-en": data})}
    sets = {r["set"]: r for r in data["robustness"]["best"]["sets"]}
    best = rows["best"]
    assert (best["long3_bleu"], best["long3_one_by_one"]) == (
        sets["long-3"]["bleu"], sets["long-3"]["one_by_one_bleu"])
    assert best["upper_bleu_lc"] == sets["upper"]["bleu_lc"] and best["copied"] == sets["pass"]["copied"]
    assert "long3_bleu" not in rows["oracle"]  # a hypothesis file has no robustness sets
    table = render_summary(list(rows.values()), "test_2016_flickr")
    assert f"| de-en | best | {best['bleu']:.2f} |" in table and "| de-en | oracle | 100.00 |" in table


@pytest.mark.parametrize("problem", ["short", "empty", "not-a-model"])
def test_bad_input_exits_2_and_writes_nothing(problem, trained_model_dir, toy_corpus_dir, tmp_path):
    args = ["--data", str(toy_corpus_dir), "--out", str(tmp_path / "out")]
    if problem == "short":
        args += ["--hyp", f"x={write_lines(tmp_path / 'h.txt', ['one line'])}"]
    elif problem == "empty":
        args += ["--hyp", f"x={write_lines(tmp_path / 'h.txt', [])}"]
    else:
        args += ["--model", str(tmp_path)]
    result = evaluate(*args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_one_system_gets_confidence_intervals(toy_corpus_dir, tmp_path):
    references = read_lines(toy_corpus_dir / "test_2016_flickr.en.gz")
    hyp = write_lines(tmp_path / "h.txt", references[:-1] + ["something else"])
    result = evaluate("--hyp", f"only={hyp}", "--data", str(toy_corpus_dir), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr[-2000:]
    system = json.loads((tmp_path / "r" / "report.json").read_text())["systems"]["only"]
    assert 0 < system["significance"]["bleu"]["ci95"] and "p_bs" not in system["significance"]["bleu"]


def test_evaluation_is_callable_from_python_with_plain_parameters(trained_model_dir, toy_corpus_dir,
                                                                  tmp_path):
    from nmt.evaluate.report import evaluate as evaluate_models

    references = read_lines(toy_corpus_dir / "test_2016_flickr.en.gz")
    oracle = write_lines(tmp_path / "oracle.txt", references)
    out = evaluate_models([trained_model_dir], tmp_path / "r", hyp=[f"oracle={oracle}"],
                          data=str(toy_corpus_dir), beam=1, robustness=False, log=lambda *a: None)
    report = json.loads((out / "report.json").read_text())
    assert set(report["systems"]) == {trained_model_dir.name, "oracle"}
    assert report["systems"]["oracle"]["bleu"] == 100.0 and "robustness" not in report


def test_a_report_is_written_over_an_existing_folder_only_when_told(toy_corpus_dir, tmp_path):
    references = read_lines(toy_corpus_dir / "test_2016_flickr.en.gz")
    hyp = write_lines(tmp_path / "h.txt", references)
    out = tmp_path / "r"
    out.mkdir()
    (out / "mine.hyp.txt").write_text("a hypothesis file this command did not write\n")
    args = ("--hyp", f"only={hyp}", "--data", str(toy_corpus_dir), "--out", str(out))
    refused = evaluate(*args)
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert [p.name for p in out.iterdir()] == ["mine.hyp.txt"]
    assert evaluate(*args, "--force").returncode == 0 and (out / "report.json").is_file()
