"""`nmt evaluate`: the report and its figures, and bad input refused with nothing written."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, write_lines

from nmt.corpus import read_lines


def evaluate(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nmt", "evaluate", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def report(trained_model_dir, toy_corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "toy"
    references = read_lines(toy_corpus_dir / "test_2016_flickr.en.gz")
    copy = write_lines(out.parent / "copy.txt", references)  # a perfect "system"
    result = evaluate("--model", str(trained_model_dir), "--hyp", f"oracle={copy}",
                      "--data", str(toy_corpus_dir), "--baseline", "best", "--beam", "2",
                      "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_report_files_and_contents(report):
    assert {p.name for p in report.iterdir()} >= {"report.md", "report.json", "by_length.png",
                                                  "best.hyp.txt", "oracle.hyp.txt"}
    data = json.loads((report / "report.json").read_text())
    oracle, model = data["systems"]["oracle"], data["systems"]["best"]
    assert oracle["bleu"] == 100.0 and oracle["bleu"] > model["bleu"]
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in model["bleu_signature"]
    assert model["significance"]["bleu"]["ci95"] >= 0
    assert oracle["significance"]["bleu"]["p_bs"] < 0.05 and "p_ar" in oracle["significance"]["bleu"]
    assert "p_bs" not in model["significance"]["bleu"]  # the baseline is not tested against itself
    assert sum(b["sentences"] for b in model["by_length"]) == data["sentences"]
    assert model["info"]["parameters"] > 0 and model["info"]["sentences_per_second"] > 0
    markdown = (report / "report.md").read_text()
    assert "| oracle | 100.00 |" in markdown and "one of the longest" in markdown
    assert (report / "by_length.png").read_bytes()[:4] == b"\x89PNG"


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
