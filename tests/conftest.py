"""Shared fixtures: a toy parallel corpus made here, a tiny vocabulary, tiny models.

The toy language pair is a word-for-word code (German-like words to English-like words, same
order), so a tiny model can learn it in seconds and tests can check real translations.
"""

from __future__ import annotations

import atexit
import gzip
import random
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Tests run torch on one thread: the same results and timings whatever else the machine runs
# (two test processes' thread pools fighting over two cores slowed both tenfold).
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
MULTI30K = ROOT / "data" / "multi30k"

LEXICON = {
    "ein": "a", "der": "the", "hund": "dog", "katze": "cat", "mann": "man", "frau": "woman",
    "kind": "child", "läuft": "runs", "spielt": "plays", "sitzt": "sits", "springt": "jumps",
    "im": "in the", "park": "park", "garten": "garden", "schnee": "snow", "wasser": "water",
    "rot": "red", "klein": "small", "groß": "big", "und": "and",
}
SUBJECTS = ["ein hund", "der hund", "eine katze", "ein mann", "eine frau", "ein kind"]
LEXICON.update({"eine": "a"})


def toy_pair(rng: random.Random) -> tuple[str, str]:
    words = rng.choice(SUBJECTS).split()
    if rng.random() < 0.5:
        words.insert(1, rng.choice(["rot", "klein", "groß"]))
    words.append(rng.choice(["läuft", "spielt", "sitzt", "springt"]))
    if rng.random() < 0.7:
        words += ["im", rng.choice(["park", "garten", "schnee", "wasser"])]
    src = " ".join(words)
    tgt = " ".join(LEXICON[w] for w in words)
    return src.capitalize() + ".", tgt.capitalize() + "."


def toy_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    pairs = [toy_pair(rng) for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# A third language for multilingual tests: the same German-like words to French-like ones.
LEXICON_FR = {
    "ein": "un", "eine": "une", "der": "le", "hund": "chien", "katze": "chat", "mann": "homme",
    "frau": "femme", "kind": "enfant", "läuft": "court", "spielt": "joue", "sitzt": "assis",
    "springt": "saute", "im": "dans le", "park": "parc", "garten": "jardin", "schnee": "neige",
    "wasser": "eau", "rot": "rouge", "klein": "petit", "groß": "grand", "und": "et",
}


def to_french(german: str) -> str:
    words = german.rstrip(".").lower().split()
    return " ".join(LEXICON_FR[w] for w in words).capitalize() + "."


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line + "\n" for line in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def toy_corpus_dir(tmp_path_factory) -> Path:
    """A corpus folder in Multi30k's layout: {train,val,test_2016_flickr}.{de,en}.gz"""
    return write_toy_splits(tmp_path_factory.mktemp("toy-corpus"))


def write_toy_splits(folder: Path, french: bool = False) -> Path:
    for split, n, seed in (("train", 1500, 0), ("val", 60, 1), ("test_2016_flickr", 60, 2)):
        src, tgt = toy_corpus(n, seed)
        write_lines(folder / f"{split}.de.gz", src)
        write_lines(folder / f"{split}.en.gz", tgt)
        if french:
            write_lines(folder / f"{split}.fr.gz", [to_french(s) for s in src])
    return folder


@pytest.fixture(scope="session")
def toy_multi_corpus_dir(tmp_path_factory) -> Path:
    """A multi-parallel corpus folder: the same sentences in de, en and fr."""
    return write_toy_splits(tmp_path_factory.mktemp("toy-multi-corpus"), french=True)


@pytest.fixture(scope="session")
def toy_tokenizer(tmp_path_factory, toy_corpus_dir):
    from nmt.data.tokenizer import train_tokenizer

    src, tgt = toy_corpus(1500, 0)
    return train_tokenizer(src + tgt, tmp_path_factory.mktemp("spm") / "spm.model", vocab_size=320)


# Token stores of the tests' corpora: one folder for the session (a store is named by its inputs
# and settings, so tests share what they can and never write into the repository's data/).
STORES = Path(tempfile.mkdtemp(prefix="nmt-test-stores-"))
atexit.register(shutil.rmtree, STORES, ignore_errors=True)


def tiny_config(corpus: Path, arch: str = "transformer", data: dict | None = None,
                vocab_size: int = 320, **train):
    from nmt.core.config import Config, DataConfig, DecodeConfig, ModelConfig, TrainConfig

    defaults = dict(max_tokens=1500, lr=3e-3, warmup_steps=50, max_epochs=2, log_every_steps=10,
                    save_every_steps=20, average_last=2, precision="fp32", label_smoothing=0.0,
                    device="cpu", threads=1)  # exact-resume checks hold for CPU kernels
    defaults.update(train)
    return Config(
        name="tiny",
        # dedupe off: the toy corpus repeats its few hundred distinct pairs by construction
        data=DataConfig(**{"corpus": str(corpus), "vocab_size": vocab_size, "dedupe": False,
                           "store_dir": str(STORES), **(data or {})}),
        model=ModelConfig(arch=arch, d_model=32, n_heads=2, n_encoder_layers=1,
                          n_decoder_layers=1, d_ff=64, dropout=0.0, embed_dim=32, hidden_size=32),
        train=TrainConfig(**defaults),
        decode=DecodeConfig(beam_size=2),
    )


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, toy_corpus_dir) -> Path:
    """A tiny Transformer trained on the toy corpus until it translates it (about 25 s), with
    joined examples and pass-through spans as the shipped models are."""
    from nmt.train.loop import train

    run = tmp_path_factory.mktemp("run") / "tiny"
    torch.manual_seed(0)
    augment = dict(join_fraction=0.3, join_max=3, span_fraction=0.2)
    # (invented names bring letters the toy corpus lacks: a vocabulary of 320 cannot hold them)
    train(tiny_config(toy_corpus_dir, data=augment, vocab_size=400, max_epochs=20,
                      eval_max_sentences=30), run)
    return run / "best"


def requires_multi30k():
    return pytest.mark.skipif(
        not (MULTI30K / "train.de.gz").is_file(),
        reason="Multi30k is not in data/multi30k (run: nmt data fetch multi30k)")


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Loading a model for serving sets torch's thread count; later tests keep their own."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, server) -> None:
    """Until ``url``/health answers; fails the test with the server's log if it exits first."""
    import time

    import httpx

    for _ in range(600):
        if server.poll() is not None:
            pytest.fail("nmt serve exited: " + server.stderr.read().decode()[-2000:])
        try:
            if httpx.get(url.rstrip("/") + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail("nmt serve did not start")
