import gzip
import shutil
import subprocess
import sys

import pytest
from conftest import MULTI30K, ROOT, requires_multi30k, write_lines

from nmt.core.errors import NmtError
from nmt.data.corpus import (
    MULTI30K_LANGS,
    MULTI30K_SPLITS,
    fetch_multi30k,
    read_lines,
    read_parallel,
)

SHARED = ROOT.parent / "shared" / "data" / "multi30k"


def nmt(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nmt", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_reads_gzip_and_plain(tmp_path):
    lines = ["Ein Hund.", "", "Zwei Katzen ä ö ü."]
    assert read_lines(write_lines(tmp_path / "a.gz", lines)) == lines
    assert read_lines(write_lines(tmp_path / "a.txt", lines)) == lines


def test_mismatched_line_counts_name_both_files(tmp_path):
    a = write_lines(tmp_path / "a.de", ["1", "2", "3"])
    b = write_lines(tmp_path / "b.en", ["1", "2"])
    with pytest.raises(NmtError) as error:
        read_parallel(a, b)
    assert "a.de" in str(error.value) and "b.en" in str(error.value)
    assert "3" in str(error.value) and "2" in str(error.value)


def make_mirror(tmp_path):
    """A complete local mirror: the real files when available, else none (test skipped)."""
    if not SHARED.is_dir():
        pytest.skip(f"no Multi30k mirror at {SHARED}")
    mirror = tmp_path / "mirror"
    shutil.copytree(SHARED, mirror)
    return mirror


def test_fetch_from_mirror_and_checksum_mismatch(tmp_path):
    mirror = make_mirror(tmp_path)
    dest = fetch_multi30k(tmp_path / "ok", from_dir=mirror)
    assert len(list(dest.glob("*.gz"))) == len(MULTI30K_SPLITS) * len(MULTI30K_LANGS)
    (mirror / "val.de.gz").chmod(0o644)
    with gzip.open(mirror / "val.de.gz", "wt") as out:
        out.write("tampered\n")
    with pytest.raises(NmtError, match="val.de.gz: checksum mismatch"):
        fetch_multi30k(tmp_path / "bad", from_dir=mirror)
    assert not (tmp_path / "bad").exists()
    assert not list(tmp_path.glob(".fetch-*"))


def test_fetch_downloads_over_a_url(tmp_path):
    """The default source, pointed at a file:// URL: the real download code, run offline."""
    mirror = make_mirror(tmp_path)
    dest = fetch_multi30k(tmp_path / "dl", base_url=mirror.as_uri(), log=lambda *a, **k: None)
    assert read_lines(dest / "val.en.gz") == read_lines(mirror / "val.en.gz")


def test_cli_fetch_missing_mirror_exits_2(tmp_path):
    result = nmt("data", "fetch", "multi30k", "--dest", str(tmp_path / "x"), "--from",
                 str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "nowhere" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@requires_multi30k()
def test_stats_on_multi30k_prints_plain_counts():
    result = nmt("data", "stats", "--pair", "de-en", "--data", str(MULTI30K))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for split, count in (("train", "29000"), ("val", "1014"), ("test_2016_flickr", "1000")):
        assert any(line.startswith(f"{split}\tde\t{count}\t") for line in lines), result.stdout


def test_stats_works_without_a_vocabulary(toy_corpus_dir, tmp_path):
    result = nmt("data", "stats", "--data", str(toy_corpus_dir), "--pair", "de-en", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "train\tde\t1500\t" in result.stdout
