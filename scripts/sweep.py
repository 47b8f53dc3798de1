"""Val-only hyperparameter sweep: one training run per setting, a fixed number of epochs each.

Epochs, not minutes, so the ranking does not depend on what else the machine is doing. Runs go
side by side (``--jobs``; on a GPU several small runs share it well, on a 2-core CPU use 1) and a
finished setting is not trained again. The table ranks settings by the better of the best
epoch's and the averaged model's val BLEU (greedy), which is what ``nmt release`` would choose
between. The test split is never read.

    python scripts/sweep.py --config configs/transformer-de-en.toml --epochs 20 --jobs 12 \\
        --out runs/sweep-transformer-de-en \\
        "lr2e-3 train.lr=2e-3" "lr2e-3-d0.3 train.lr=2e-3 model.dropout=0.3"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def train(config: str, out: Path, setting: str, epochs: int, threads: int) -> tuple[str, int]:
    name, *overrides = setting.split()
    run_dir = out / name
    if epochs_done(run_dir) >= epochs and (run_dir / "averaged" / "config.json").is_file():
        return name, 0
    args = [sys.executable, "-m", "nmt", "train", "--config", config, "--run-dir", str(run_dir),
            "--set", f"train.max_epochs={epochs}", "--set", "train.max_minutes=0",
            "--set", "train.patience=0", "--set", f"train.threads={threads}"]
    if (run_dir / "states.json").is_file():
        args += ["--resume", str(run_dir)]
    for override in overrides:
        args += ["--set", override]
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.log", "w", encoding="utf-8") as log:
        return name, subprocess.call(args, stdout=log, stderr=subprocess.STDOUT)


def epochs_done(run_dir: Path) -> int:
    evals = read_evals(run_dir)
    return evals[-1]["epoch"] if evals else 0


def read_evals(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [row for row in rows if row.get("kind") == "eval"]


def averaged_bleu(run_dir: Path) -> float | None:
    path = run_dir / "averaged" / "metrics.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["training"]["val_bleu"]


def table(out: Path) -> str:
    lines = ["| setting | epochs | best val BLEU (epoch) | averaged val BLEU | last val loss |",
             "|---|---|---|---|---|"]
    rows = []
    for run_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        evals = read_evals(run_dir)
        if not evals:
            continue
        best = max(evals, key=lambda row: row["val_bleu"])
        averaged = averaged_bleu(run_dir)
        score = max(best["val_bleu"], averaged or 0.0)
        rows.append((score, f"| {run_dir.name} | {evals[-1]['epoch']} | {best['val_bleu']:.2f} "
                            f"({best['epoch']}) | {averaged if averaged is not None else '-'} | "
                            f"{evals[-1]['val_loss']:.4f} |"))
    return "\n".join(lines + [line for _, line in sorted(rows, reverse=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per run (0: all cores when --jobs 1, else 1)")
    parser.add_argument("settings", nargs="*",
                        help='"NAME key=value ..." (none: only print the table of --out)')
    args = parser.parse_args()
    threads = args.threads or (0 if args.jobs == 1 else 1)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    failed = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for name, code in pool.map(lambda s: train(args.config, args.out, s, args.epochs, threads),
                                   args.settings):
            print(f"{name}: {'done' if code == 0 else f'failed (exit {code})'} "
                  f"at {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            if code != 0:
                failed.append(name)
    print(table(args.out))
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (logs: {args.out}/NAME.log)")


if __name__ == "__main__":
    main()
