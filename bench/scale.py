"""Corpora of any size: preparation throughput, time to the first step, memory of training.

    python bench/scale.py [--sizes 1000000 10000000] [--workdir /tmp/nmt-scale] [--ranks 2]

For each size, a synthetic German-English corpus is made from Multi30k (data/multi30k): pairs
drawn at random and joined one to three at a time, numbered so that none is a duplicate. Then,
one after the other on the same files:

- ``nmt data prepare`` with the built-in defaults (cleaning and encoding, no augmentation): wall
  time, pairs/s, the share spent on the shards (streaming, cleaning and encoding on every core,
  after the vocabulary) and the peak RSS of the largest process;
- the ``datasets`` way with that store's tokenizer: ``load_dataset("text")`` of each side and
  ``map`` of SentencePiece over ``num_proc`` = cores (Hugging Face's recipe for a corpus), the
  work of the shards' part less cleaning;
- ``nmt data prepare`` with the shipped recipe (configs/transformer-de-en.toml: augmentation,
  20% more pairs), the store training reads;
- ``nmt train`` on the prepared store (the Transformer of configs/transformer-de-en.toml, 20
  steps): seconds from the command to its first step, peak RSS of the training process, and
  tokens/s; then the same with ``torchrun`` on ``--ranks`` processes: each rank's peak RSS and
  the bytes of token ids it read (each reads only its own rows of every batch).

Peak RSS is VmHWM from /proc, read while the process runs; it counts the store's pages a
process touched (memory-mapped, shared with the page cache). Prints JSON; writes
reports/scale.json with --out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATA = ["--config", str(ROOT / "configs/transformer-de-en.toml"),
        "--set", "data.heldout_pairs=200"]  # the shipped recipe, augmentation included
TRAIN = ["--set", "train.max_steps=20", "--set", "train.warmup_steps=10",
         "--set", "train.log_every_steps=1", "--set", "train.save_every_steps=0",
         "--set", "train.eval_max_sentences=20"]


def synthetic_corpus(folder: Path, size: int, seed: int = 1) -> tuple[Path, Path]:
    """``size`` distinct pairs made from Multi30k's training captions."""
    src_path, tgt_path = folder / f"corpus-{size}.de", folder / f"corpus-{size}.en"
    if src_path.is_file() and tgt_path.is_file():
        return src_path, tgt_path
    read = lambda lang: [line.rstrip("\n") for line in  # noqa: E731
                         gzip.open(ROOT / f"data/multi30k/train.{lang}.gz", "rt", encoding="utf-8")]
    de, en = read("de"), read("en")
    rng = random.Random(seed)
    with open(src_path, "w", encoding="utf-8") as s, open(tgt_path, "w", encoding="utf-8") as t:
        for number in range(size):
            picks = [rng.randrange(len(de)) for _ in range(rng.choice((1, 1, 2, 3)))]
            s.write(" ".join(de[i] for i in picks) + f" ({number})\n")
            t.write(" ".join(en[i] for i in picks) + f" ({number})\n")
    return src_path, tgt_path


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def peak_rss(pid: int) -> int:
    """VmHWM of a process, in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def watched(command: list[str], cwd: Path, first_step: Path | None = None,
            env: dict | None = None) -> dict:
    """Run ``command``; its wall time, the peak RSS of each process of its tree (by command
    line), and the seconds until ``first_step`` (a metrics file) shows a training step."""
    start = time.perf_counter()
    # Output to files, not pipes: a child writing progress bars into a full pipe would block.
    out_file, err_file = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen(command, cwd=cwd, stdout=out_file, stderr=err_file,
                               text=True, env={**os.environ, **(env or {})})
    peaks: dict[int, int] = {}
    names: dict[int, str] = {}
    first = None
    while process.poll() is None:
        for pid in descendants(process.pid):
            peaks[pid] = max(peaks.get(pid, 0), peak_rss(pid))
            if pid not in names:
                try:
                    names[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") \
                        .decode(errors="replace")[:80]
                except OSError:
                    names[pid] = "?"
        if first is None and first_step is not None and first_step.is_file() \
                and '"kind": "train"' in first_step.read_text():
            first = time.perf_counter() - start
        time.sleep(0.05)
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read(), err_file.read()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return {"seconds": round(time.perf_counter() - start, 1), "stdout": out, "stderr": err,
            "peaks": {pid: (names.get(pid, "?"), rss) for pid, rss in peaks.items() if rss},
            "first_step_seconds": round(first, 1) if first is not None else None}


def prepare(src: Path, tgt: Path, work: Path, recipe: bool) -> dict:
    """``nmt data prepare`` with the shipped recipe (augmentation) or the built-in defaults
    (cleaning and encoding only: the work ``datasets.map`` does)."""
    data = DATA if recipe else ["--set", "data.heldout_pairs=200"]
    run = watched([PYTHON, "-m", "nmt", "data", "prepare", *data, "--src-file", str(src),
                   "--tgt-file", str(tgt), "--set", f"data.store_dir={work / 'stores'}"],
                  cwd=ROOT)
    store = Path(run["stdout"].strip().splitlines()[-1])
    manifest = json.loads((store / "manifest.json").read_text())
    pairs = sum(s["pairs"] for s in manifest["shards"])
    return {"store": str(store), "seconds": run["seconds"], "pairs_stored": pairs,
            "pairs_per_s": round(manifest["read_pairs"] / run["seconds"]),
            "shard_seconds": manifest["shard_seconds"],
            "shard_pairs_per_s": round(manifest["read_pairs"] / manifest["shard_seconds"]),
            "peak_rss_mb": round(max(rss for _, rss in run["peaks"].values()) / 2**20),
            "store_mb": round(sum(p.stat().st_size for p in store.glob("*.npy")) / 1e6)}


DATASETS_WAY = """
import sys, time, datasets, sentencepiece as spm
src, tgt, model, cache, procs = sys.argv[1:6]
start = time.perf_counter()
def encode(batch):
    sp = spm.SentencePieceProcessor(model_file=model)
    return {"ids": [sp.Encode(t) for t in batch["text"]]}
sides = []
for path in (src, tgt):  # each side loaded and mapped; rows stay aligned by number
    side = datasets.load_dataset("text", data_files={"train": path}, split="train",
                                 cache_dir=cache)
    sides.append(side.map(encode, batched=True, batch_size=10000, num_proc=int(procs),
                          remove_columns=["text"]))
print(len(sides[0]), round(time.perf_counter() - start, 1))
"""


def datasets_way(src: Path, tgt: Path, store: Path, work: Path) -> dict:
    cache = work / f"hf-cache-{src.name}"
    run = watched([PYTHON, "-c", DATASETS_WAY, str(src), str(tgt), str(store / "spm.model"),
                   str(cache), str(os.cpu_count() or 1)], cwd=work)
    subprocess.run(["rm", "-rf", str(cache)], check=False)
    pairs = int(run["stdout"].split()[0])
    return {"seconds": run["seconds"], "pairs_per_s": round(pairs / run["seconds"]),
            "peak_rss_mb": round(max(rss for _, rss in run["peaks"].values()) / 2**20)}


def train(src: Path, tgt: Path, work: Path, name: str, ranks: int = 1) -> dict:
    run_dir = work / "runs" / name
    subprocess.run(["rm", "-rf", str(run_dir)], check=False)
    base = ["-m", "nmt", "train", *DATA, "--src-file", str(src), "--tgt-file", str(tgt), "--set",
            f"data.store_dir={work / 'stores'}", "--run-dir", str(run_dir), *TRAIN]
    if ranks > 1:
        torchrun = str(Path(PYTHON).parent / "torchrun")
        command = [torchrun, "--nproc_per_node", str(ranks), "--master_port", "29533", *base]
    else:
        command = [PYTHON, *base]
    run = watched(command, cwd=ROOT, first_step=run_dir / "metrics.jsonl",
                  env={"NMT_REPORT_READS": "1", "OMP_NUM_THREADS": str(max(1, 2 // ranks))})
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_s"] for r in rows if r["kind"] == "train"][5:]
    trainers = {pid: rss for pid, (name_, rss) in run["peaks"].items()
                if "nmt train" in name_ and "torchrun" not in name_}
    reads = [int(m.replace(",", "")) for m in re.findall(r"read ([\d,]+) bytes", run["stderr"])]
    return {"ranks": ranks, "first_step_seconds": run["first_step_seconds"],
            "tokens_per_s": round(sum(speeds) / max(len(speeds), 1)),
            "peak_rss_mb_per_process": sorted(round(v / 2**20) for v in trainers.values()),
            "token_bytes_read_per_rank": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", default="/tmp/nmt-scale")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--out", help="also write the JSON here (e.g. reports/scale.json)")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{os.cpu_count()} cores", "sizes": {}}
    for size in args.sizes:
        src, tgt = synthetic_corpus(work, size)
        row = {"prepare_plain": prepare(src, tgt, work, recipe=False)}
        row["datasets_map"] = datasets_way(src, tgt, Path(row["prepare_plain"]["store"]), work)
        row["prepare"] = prepare(src, tgt, work, recipe=True)
        row["train"] = train(src, tgt, work, f"{size}-1")
        if args.ranks > 1:
            row["torchrun"] = train(src, tgt, work, f"{size}-{args.ranks}", args.ranks)
        results["sizes"][str(size)] = row
        print(json.dumps({size: row}), file=sys.stderr, flush=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
