"""From a DataConfig to a token store (nmt/data/store.py): one streamed path for every corpus.

The corpus is read as a stream (nmt/data/sources.py), cleaned (nmt/data/clean.py) and cut into
chunks of ``data.shard_pairs`` pairs; every core augments (nmt/data/augment.py) and encodes one chunk at a
time, and each chunk becomes a shard of the store. Memory holds a few chunks, whatever the size
of the corpus. Passes over the text:

1. reading: uniform, seeded samples (reservoir sampling) of the validation and test pairs of a
   corpus that has none, and of ``data.vocab_sample`` pairs, on which the joint SentencePiece
   vocabulary is trained, so that it costs the same for 1M and 100M pairs (Marian samples 2M
   lines);
2. (``data.teacher`` only) the teacher translates the training sources chunk by chunk; each
   chunk's translations are kept in the store's folder, so an interrupted run keeps them, and
   the vocabulary's sample is drawn again with its targets;
3. the shards: resumable, since each finished one is listed in ``partial.json``.

Augmentation is materialised here rather than applied per batch: its pairs must be encoded,
which is the cost of preparation, and training then reads plain ids (its steps, and an exact
resume, depend on nothing but the store and the seed). A chunk's transforms are seeded by the
chunk, so a corpus of one chunk (Multi30k) is augmented exactly as a whole corpus was before.

A store is named by a hash of its inputs (files, sizes, times) and of every setting that shapes
it: a second run on the same data reads the store instead of preparing it again.

A config with ``data.pairs`` trains one model for several directions: each pair is built from the
multi-parallel files and augmented on its own, and every source starts with the tag of its target
language (``<2en>``, one token). The validation set interleaves the directions row by row, so
that a prefix of it (``train.eval_max_sentences``) holds every direction alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from nmt.core.config import directions
from nmt.core.errors import NmtError
from nmt.core.files import atomic_write_text
from nmt.core.progress import bar
from nmt.data.augment import augment, real_names
from nmt.data.clean import Cleaner
from nmt.data.corpus import load_directions, read_lines, read_parallel, split_file
from nmt.data.sources import Corpus, Record, mixed
from nmt.data.store import (
    FORMAT,
    MANIFEST,
    PARTIAL,
    TokenStore,
    read_manifest,
    shard_arrays,
    token_dtype,
    write_manifest,
    write_shard,
)
from nmt.data.tokenizer import Tokenizer, train_tokenizer
from nmt.text.passthrough import PASS_THROUGH

# The teacher's translations of training sources (nmt/train/distill.py's distilled_targets:
# teacher, sources, src_lang, tgt_lang, cache_dir, log): passed in by the layer that can translate.
Distill = Callable[..., list[str]]
HELDOUT_SHARE = 20  # held-out sets take at most 1/20 of a small corpus each


@dataclass
class TokenizedSplit:
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    pairs: list[str] | None = None  # each row's direction ("de-en"), in a multilingual split


# ----------------------------------------------------------------------------- what is read


def languages(d) -> tuple[str, ...]:
    """The languages of each record of the stream, in order."""
    return tuple(dict.fromkeys(lang for pair in directions(d) for lang in pair))


def own_corpus(d) -> bool:
    """Whether training reads the user's files rather than ``data.corpus``'s train split."""
    return bool(d.src_file or d.tgt_file or d.tsv_file or d.dataset or d.corpora)


def training_corpora(d) -> list[Corpus]:
    langs = languages(d)
    if d.tsv_file:
        main = [Corpus(d.tsv_file)]
    elif d.src_file or d.tgt_file:
        if not (d.src_file and d.tgt_file):
            raise NmtError("data.src_file and data.tgt_file must be given together")
        main = [Corpus(f"{d.src_file}+{d.tgt_file}")]
    elif d.dataset:
        main = [Corpus(d.dataset)]
    elif d.corpora:
        main = []
    else:
        main = [Corpus("+".join(str(split_file(d.corpus, d.train_split, lang)) for lang in langs))]
    return main + [Corpus.parse(spec) for spec in d.corpora]


def check_sources(data) -> None:
    """Fail before any work when a configured data path does not exist."""
    for corpus in training_corpora(data):
        corpus.check()
    for path in (data.valid_src_file, data.valid_tgt_file, data.test_src_file,
                 data.test_tgt_file):
        if path and not Path(path).is_file():
            raise NmtError(f"{path}: data file not found")
    if bool(data.valid_src_file) != bool(data.valid_tgt_file):
        raise NmtError("data.valid_src_file and data.valid_tgt_file must be given together")
    if data.teacher and not Path(data.teacher).is_dir():
        raise NmtError(f"data.teacher {data.teacher}: model directory not found")
    if not own_corpus(data) and not data.valid_src_file:
        for lang in languages(data):
            split_file(data.corpus, data.valid_split, lang)


def store_key(config) -> str:
    """A hash of everything that shapes the store: inputs as found on disk, and settings."""
    d = config.data
    ignored = {"valid_split", "valid_src_file", "valid_tgt_file", "store_dir"}
    settings = {k: v for k, v in config.to_dict()["data"].items() if k not in ignored}
    files = []
    for corpus in training_corpora(d):
        for path in corpus.files():
            found = sorted(path.rglob("*")) if path.is_dir() else [path]
            files += [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in found if p.is_file()]
    teacher = Path(d.teacher) / "SHA256SUMS" if d.teacher else None
    recipe = {"format": FORMAT, "seed": config.train.seed, "data": settings,
              "files": files, "corpora": [c.spec for c in training_corpora(d)],
              "teacher": teacher.read_text() if teacher and teacher.is_file() else ""}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def store_folder(config) -> Path:
    d = config.data
    name = "-".join(p.replace("-", "") for p in d.pairs) if d.pairs else f"{d.src_lang}{d.tgt_lang}"
    return Path(d.store_dir) / f"{name}-{store_key(config)[:16]}"


def cleaned_chunks(config, cleaner: Cleaner) -> Iterator[tuple[int, list[Record]]]:
    """The cleaned records in chunks of ``data.shard_pairs``, numbered from 0."""
    d, chunk, number = config.data, [], 0
    for record in mixed(training_corpora(d), languages(d), config.train.seed):
        if cleaner.keep(record):
            chunk.append(record)
            if len(chunk) == d.shard_pairs:
                yield number, chunk
                number, chunk = number + 1, []
    if chunk:
        yield number, chunk


def new_cleaner(d) -> Cleaner:
    return Cleaner(d.max_length_ratio, d.dedupe)


# ----------------------------------------------------------------------------- the teacher


def distilled_folder(folder: Path, number: int) -> Path:
    return folder / "distilled" / f"{number:05d}"


def distill_all(config, folder: Path, heldout: dict[int, str], distill: Distill | None, log) -> None:
    """The teacher's translation of every training source, chunk by chunk, kept in ``folder``."""
    d = config.data
    if not d.teacher:
        return
    if distill is None:
        raise NmtError(f"data.teacher = {d.teacher!r}: distillation needs a translator "
                       "(nmt.train.distill.distilled_targets)")
    with bar(None, "distilling", unit="pairs") as progress:
        for number, records in cleaned_chunks(config, new_cleaner(d)):
            first = number * d.shard_pairs
            sources = [r[0] for i, r in enumerate(records, start=first) if i not in heldout]
            cache = distilled_folder(folder, number)
            cache.mkdir(parents=True, exist_ok=True)
            distill(d.teacher, sources, d.src_lang, d.tgt_lang, cache, log)
            progress.update(len(sources))


def chunk_pairs(config, folder: Path, number: int, records: list[Record],
                heldout: set[int]) -> dict[str, tuple[list[str], list[str]]]:
    """Each direction's training pairs of a chunk (held-out pairs left out; a teacher's
    targets in place of, or after, the references)."""
    d, langs = config.data, languages(config.data)
    first = number * d.shard_pairs
    kept = [r for i, r in enumerate(records, start=first) if i not in heldout]
    out = {}
    for s, t in directions(d):
        src, tgt = [r[langs.index(s)] for r in kept], [r[langs.index(t)] for r in kept]
        if d.teacher:
            distilled = read_lines(distilled_folder(folder, number) / f"distilled.{t}")
            src, tgt = (src + src, tgt + distilled) if d.keep_references else (src, distilled)
        out[f"{s}-{t}"] = (src, tgt)
    return out


# ----------------------------------------------------------------------------- samples


def reservoir_add(sample: list, seen: int, item, size: int, rng: random.Random) -> None:
    """Algorithm R: after n items, each is in ``sample`` with probability size / n."""
    if seen < size:
        sample.append(item)
    else:
        j = rng.randrange(seen + 1)
        if j < size:
            sample[j] = item


def read_corpus(config, sizes: tuple[int, int], log) -> tuple[list, list, int]:
    """One pass over the cleaned corpus: the held-out candidates and the vocabulary's sample,
    both (index, record) reservoirs, and the number of cleaned pairs."""
    d, seed = config.data, config.train.seed
    heldout_rng, vocab_rng = random.Random(f"{seed}/heldout"), random.Random(f"{seed}/vocab")
    candidates, sample, total = [], [], 0
    cleaner = new_cleaner(d)
    with bar(None, "reading", unit="pairs") as progress:
        for number, records in cleaned_chunks(config, cleaner):
            for i, record in enumerate(records, start=number * d.shard_pairs):
                reservoir_add(candidates, i, (i, record), sum(sizes), heldout_rng)
                reservoir_add(sample, i, (i, record), d.vocab_sample, vocab_rng)
            total += len(records)
            progress.update(len(records))
    log(f"cleaning: {cleaner.summary()}")
    return candidates, sample, total


def teacher_sample(config, folder: Path, heldout: dict[int, str]) -> list[tuple[str, str]]:
    """The vocabulary's sample of training pairs as a teacher makes them (its targets)."""
    d, sample, seen = config.data, [], 0
    rng = random.Random(f"{config.train.seed}/vocab")
    for number, records in cleaned_chunks(config, new_cleaner(d)):
        src, tgt = chunk_pairs(config, folder, number, records, heldout)[f"{d.src_lang}-{d.tgt_lang}"]
        for pair in zip(src, tgt):
            reservoir_add(sample, seen, pair, d.vocab_sample, rng)
            seen += 1
    return sample


def held_out_indices(candidates, sizes: tuple[int, int], total: int, seed: int) -> dict[int, str]:
    """Which cleaned pairs are validation and test pairs: a seeded draw, each set at most
    1/HELDOUT_SHARE of the corpus."""
    order = sorted(candidates)
    random.Random(f"{seed}/heldout-order").shuffle(order)
    n_val, n_test = (min(n, total // HELDOUT_SHARE) for n in sizes)
    return {index: "val" if k < n_val else "test"
            for k, (index, _) in enumerate(order[:n_val + n_test])}


def write_heldout(config, folder: Path, chosen: list[tuple[int, Record]],
                  heldout: dict[int, str], log) -> None:
    """``folder/heldout/{val,test}.{lang}``: the drawn pairs, or the user's own files."""
    d, langs = config.data, languages(config.data)
    out = folder / "heldout"
    out.mkdir(exist_ok=True)
    for split, given in (("val", (d.valid_src_file, d.valid_tgt_file)),
                         ("test", (d.test_src_file, d.test_tgt_file))):
        if given[0]:
            rows = list(zip(*read_parallel(*given)))
            origin = f"{given[0]} + {given[1]}"
        else:
            rows = [record for index, record in sorted(chosen) if heldout.get(index) == split]
            origin = "drawn from the training corpus (data.heldout_pairs, seeded)"
        for k, lang in enumerate(langs[:2]):
            atomic_write_text(out / f"{split}.{lang}", "".join(r[k] + "\n" for r in rows))
        log(f"{split}: {len(rows)} pairs, {origin} -> {out}/{split}.*")


def train_vocabulary(config, out: Path, sample: list, log) -> Tokenizer:
    """SentencePiece on the sample: augmented as training pairs are (bilingual), or each
    language's sentences once (multilingual)."""
    d = config.data
    if d.pairs:
        texts = [r[k] for k in range(len(languages(d))) for r in sample]
    else:
        src, tgt = [s for s, _ in sample], [t for _, t in sample]
        src, tgt, _ = augment(src, tgt, d.src_lang, d.tgt_lang, d, config.train.seed,
                              training_names(d))
        texts = src + tgt
    log(f"training a joint {d.spm_model_type} SentencePiece vocabulary of {d.vocab_size} "
        f"on {len(texts):,} sentences")
    return train_tokenizer(texts, out, d.vocab_size, d.spm_model_type)


# ----------------------------------------------------------------------------- shards


_worker: dict = {}


def _start_worker(spm_path: str, config) -> None:
    _worker["tokenizer"], _worker["config"] = Tokenizer(spm_path), config
    _worker["names"] = training_names(config.data)


def encode_chunk(job: tuple[int, dict[str, tuple[list[str], list[str]]]]) -> tuple:
    """A chunk's shard arrays (run in a worker process): every direction augmented with the
    chunk's seed, tagged (multilingual), encoded, over-long pairs dropped."""
    number, by_direction = job
    config, tokenizer = _worker["config"], _worker["tokenizer"]
    d, seed = config.data, config.train.seed
    src_ids, tgt_ids, kept, counts, pieces = [], [], [], Counter(), {}
    for pair, (src, tgt) in by_direction.items():
        chunk_seed = (f"{seed}/{pair}" if d.pairs else seed) if number == 0 else \
            f"{seed}/{pair}/chunk{number}"
        src, tgt, done = augment(src, tgt, *pair.split("-"), d, chunk_seed, _worker["names"])
        counts.update(done)
        s_ids, t_ids = tokenizer.encode_many(src), tokenizer.encode_many(tgt)
        if d.pairs:
            tag = tokenizer.language_tag(pair.split("-")[1])
            s_ids = [[tag] + ids for ids in s_ids]
        longest = d.max_tokens_per_sentence
        keep = [i for i, (s, t) in enumerate(zip(s_ids, t_ids))
                if 0 < len(s) <= longest and 0 < len(t) <= longest]
        over = sum(len(s) > longest or len(t) > longest for s, t in zip(s_ids, t_ids))
        counts["over-long"] += over
        counts["empty after tokenizing"] += len(s_ids) - len(keep) - over
        src_ids += [s_ids[i] for i in keep]
        tgt_ids += [t_ids[i] for i in keep]
        lang = pair.split("-")[1]
        pieces.setdefault(lang, set()).update(
            np.unique(np.fromiter(chain.from_iterable(t_ids[i] for i in keep), dtype=np.int64)
                      ).tolist())
        kept.append((pair, len(keep)))
    arrays = shard_arrays(src_ids, tgt_ids, token_dtype(tokenizer.vocab_size))
    return number, arrays, kept, dict(counts), {k: sorted(v) for k, v in pieces.items()}


def write_shards(config, folder: Path, tokenizer: Tokenizer, heldout: dict[int, str],
                 total: int) -> dict:
    """Every chunk encoded by a pool of processes and written as a shard; resumes after the
    shards ``partial.json`` lists. The manifest."""
    import multiprocessing

    d = config.data
    partial = read_manifest(folder, final=False) or {
        "format": FORMAT, "key": store_key(config), "shards": [], "counts": {}, "pieces": {}}
    done = {entry["name"] for entry in partial["shards"]}
    workers = max(1, min(os.cpu_count() or 1, -(-total // d.shard_pairs)))
    context = multiprocessing.get_context("fork")
    cleaner = new_cleaner(d)
    with bar(total, "preparing", unit="pairs") as progress, \
            context.Pool(workers, _start_worker, (str(tokenizer.path), config)) as pool:
        pending: deque = deque()

        def finish_one() -> None:
            number, arrays, kept, counts, pieces = pending.popleft().get()
            entry = write_shard(folder, f"{number:05d}", arrays, kept)
            partial["shards"].append(entry)
            partial["counts"] = dict(Counter(partial["counts"]) + Counter(counts))
            for lang, ids in pieces.items():
                partial["pieces"][lang] = sorted(set(partial["pieces"].get(lang, [])) | set(ids))
            write_manifest(folder, partial, final=False)

        for number, records in cleaned_chunks(config, cleaner):
            progress.update(len(records))
            if f"{number:05d}" in done:
                continue
            job = (number, chunk_pairs(config, folder, number, records, heldout))
            pending.append(pool.apply_async(encode_chunk, (job,)))
            while len(pending) > 2 * workers:  # a few chunks in memory, however large the corpus
                finish_one()
        while pending:
            finish_one()
    partial["shards"].sort(key=lambda e: e["name"])
    partial["cleaning"], partial["read_pairs"] = cleaner.summary(), cleaner.read
    return partial


def prepare_store(config, log=print, distill: Distill | None = None) -> Path:
    """The token store of ``config``'s training data, prepared unless it already exists."""
    folder = store_folder(config)
    if (folder / MANIFEST).is_file():
        log(f"prepared corpus: {folder}")
        return folder
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    heldout, total = vocabulary_and_heldout(config, folder, distill, log)
    shards_start = time.perf_counter()
    manifest = write_shards(config, folder, Tokenizer(folder / "spm.model"), heldout, total)
    end = time.perf_counter()
    manifest.update(vocab_size=Tokenizer(folder / "spm.model").vocab_size,
                    langs=list(languages(config.data)),
                    directions=[f"{s}-{t}" for s, t in directions(config.data)],
                    seconds=round(end - start, 1), shard_seconds=round(end - shards_start, 1))
    write_manifest(folder, manifest, final=True)
    (folder / PARTIAL).unlink(missing_ok=True)
    log(summary(TokenStore(folder), total, manifest))
    return folder


def vocabulary_and_heldout(config, folder: Path, distill: Distill | None, log
                           ) -> tuple[dict[int, str], int]:
    """Passes 1 and 2 (once: an interrupted preparation finds them in ``folder``): the held-out
    pairs drawn, the teacher's translations, the vocabulary."""
    d, saved = config.data, folder / "heldout.json"
    if (folder / "spm.model").is_file() and saved.is_file():
        kept = json.loads(saved.read_text(encoding="utf-8"))
        return {int(k): v for k, v in kept["indices"].items()}, kept["total"]
    sizes = (0 if d.valid_src_file or not own_corpus(d) else d.heldout_pairs,
             0 if d.test_src_file or not own_corpus(d) else d.heldout_pairs)
    candidates, sample, total = read_corpus(config, sizes, log)
    heldout = held_out_indices(candidates, sizes, total, config.train.seed)
    if own_corpus(d):
        write_heldout(config, folder, candidates, heldout, log)
    if d.teacher:
        distill_all(config, folder, heldout, distill, log)
        pairs = teacher_sample(config, folder, heldout)
    elif d.pairs:
        pairs = [record for i, record in sample if i not in heldout]
    else:
        pairs = [record[:2] for i, record in sample if i not in heldout]
    train_vocabulary(config, folder / "spm.model", pairs, log)
    atomic_write_text(saved, json.dumps({"total": total, "indices": heldout}) + "\n")
    return heldout, total


def vocabulary_only(config, out: Path, log) -> Tokenizer:
    """``nmt data vocab``: the vocabulary of ``config``'s sample of the corpus, made as
    preparation makes it but with the references (no teacher translates anything)."""
    import dataclasses

    d = dataclasses.replace(config.data, teacher="", keep_references=False)
    config = config.replace(data=d)
    _, sample, _ = read_corpus(config, (0, 0), log)
    pairs = [record if d.pairs else record[:2] for _, record in sample]
    return train_vocabulary(config, out, pairs, log)


def summary(store: TokenStore, total: int, manifest: dict) -> str:
    src = sum(s["src_tokens"] for s in store.shards)
    tgt = sum(s["tgt_tokens"] for s in store.shards)
    size = sum(p.stat().st_size for p in store.folder.glob("*.npy"))
    counts = ", ".join(f"{v:,} {k}" for k, v in sorted(manifest["counts"].items()) if v)
    return (f"prepared {store.folder}: {len(store):,} training pairs from {total:,} cleaned "
            f"({manifest['cleaning']}); {counts or 'no augmentation'}; {src:,} source and "
            f"{tgt:,} target tokens in {len(store.shards)} shards, {size / 1e6:,.1f} MB; "
            f"{manifest['seconds']:.0f} s")


def training_names(d) -> tuple[list[str], list[str]] | None:
    """Real names for the name spans, when the config asks for them; the robustness set's own
    names are held out (nmt/evaluate/robustness.py measures copying names never seen in training)."""
    if not d.real_name_share:
        return None
    held_out = {word for name in PASS_THROUGH["name"] for word in name.split()}
    return real_names(held_out)


# ----------------------------------------------------------------------------- validation


def eval_data(config, store_dir: Path) -> tuple[Path, str]:
    """Where release and evaluate find a run's val and test pairs: (folder, test split)."""
    if own_corpus(config.data):
        return store_dir / "heldout", "test"
    return Path(config.data.corpus), "test_2016_flickr"


def validation_split(config, store_dir: Path, tokenizer: Tokenizer) -> TokenizedSplit:
    """The pairs scored each epoch: the user's or the drawn val pairs, or the corpus's split."""
    d = config.data
    if d.pairs:
        return multilingual_validation(config, tokenizer)
    if d.valid_src_file:
        src, tgt = read_parallel(d.valid_src_file, d.valid_tgt_file)
    else:
        folder, _ = eval_data(config, store_dir)
        split = "val" if own_corpus(d) else d.valid_split
        src, tgt = read_parallel(split_file(folder, split, d.src_lang),
                                 split_file(folder, split, d.tgt_lang))
    return TokenizedSplit(src, tgt, tokenizer.encode(src), tokenizer.encode(tgt))


def multilingual_validation(config, tokenizer: Tokenizer) -> TokenizedSplit:
    d = config.data
    valid = load_directions(d, d.valid_split)
    parts = []
    for (_, tgt_lang), (pair, data) in zip(directions(d), valid.items()):
        tag = tokenizer.language_tag(tgt_lang)
        parts.append([(s, t, [tag] + si, ti, pair) for s, t, si, ti in zip(
            data.src, data.tgt, tokenizer.encode(data.src), tokenizer.encode(data.tgt))])
    interleaved = [row for rows_at in zip(*parts) for row in rows_at]
    return TokenizedSplit(*map(list, zip(*interleaved)))


def copy_vocabulary(store_dir: Path, run_dir: Path) -> Tokenizer:
    """The run's ``spm.model``: the store's, copied once (model directories copy the run's)."""
    path = run_dir / "spm.model"
    if not path.is_file():
        shutil.copyfile(store_dir / "spm.model", path)
    return Tokenizer(path)
