import subprocess
import sys

from conftest import ROOT


def nmt(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "nmt", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_one_line_out_per_line_in(trained_model_dir):
    result = nmt("translate", "--model", str(trained_model_dir), "--beam", "2",
                 stdin="Ein hund läuft im park.\n\nEine katze sitzt.\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[3] == ""  # three lines, each ended by a newline
    assert lines[0].lower().startswith("a dog") and lines[1] == ""


def test_files_and_n_best(trained_model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("Ein mann spielt.\nDer hund sitzt im schnee.\n")
    out = tmp_path / "out.txt"
    result = nmt("translate", "--model", str(trained_model_dir), "--input", str(source),
                 "--output", str(out), "--beam", "3", "--n-best", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    rows = out.read_text().splitlines()
    assert len(rows) == 2 and all(len(r.split("\t")) == 2 for r in rows)


def test_bad_model_dir_is_one_clear_line(tmp_path):
    result = nmt("translate", "--model", str(tmp_path), stdin="Hallo\n")
    assert result.returncode == 2
    assert "not a model directory" in result.stderr and "Traceback" not in result.stderr


def test_align_appends_word_links_as_marian_does(trained_model_dir):
    result = nmt("translate", "--model", str(trained_model_dir), "--beam", "2", "--align",
                 stdin="Ein hund läuft.\n")
    assert result.returncode == 0, result.stderr
    translation, links = result.stdout.rstrip("\n").split(" ||| ")
    pairs = [tuple(map(int, link.split("-"))) for link in links.split()]
    assert translation.lower().startswith("a dog") and pairs
    assert all(0 <= i < 3 and 0 <= j < len(translation.split()) for i, j in pairs)
    assert len({j for _, j in pairs}) >= 2
