#!/usr/bin/env bash
# Short val-only sweep for the RNN baseline: each setting trains a fixed number of epochs (not
# minutes, so the ranking does not depend on what else the machine is doing), then the table of
# val BLEU (greedy) and val loss per setting is printed. The test split is never read.
# Coordinate search: the learning rate first (from the Transformer's 1e-3), then dropout and the
# hidden size at the better rate.
#   bash scripts/sweep-rnn-de-en.sh [EPOCHS]
set -euo pipefail
epochs="${1:-5}"
out=runs/sweep-rnn-de-en
mkdir -p "$out"
settings=(
  "h512-d0.3 model.hidden_size=512 model.dropout=0.3 train.lr=1e-3"
  "h512-d0.3-lr2e-3 model.hidden_size=512 model.dropout=0.3 train.lr=2e-3"
  "h512-d0.2-lr2e-3 model.hidden_size=512 model.dropout=0.2 train.lr=2e-3"
  "h768-d0.3-lr2e-3 model.hidden_size=768 model.dropout=0.3 train.lr=2e-3"
)
for setting in "${settings[@]}"; do
  read -r name overrides <<< "$setting"
  [ -f "$out/$name/last/config.json" ] && continue
  args=(--set "train.max_epochs=$epochs" --set train.max_minutes=0 --set train.patience=0)
  for kv in $overrides; do args+=(--set "$kv"); done
  nmt train --config configs/rnn-de-en.toml --run-dir "$out/$name" "${args[@]}"
done
python - "$out" <<'PY'
import json, pathlib, sys
rows = []
for run in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    evals = [json.loads(l) for l in (run / "metrics.jsonl").open() if '"eval"' in l]
    if evals:
        rows.append((run.name, evals[-1]["epoch"], evals[-1]["val_bleu"], evals[-1]["val_loss"]))
print("| setting | epochs | val BLEU (greedy) | val loss |\n|---|---|---|---|")
for name, epoch, bleu, loss in sorted(rows, key=lambda r: -r[2]):
    print(f"| {name} | {epoch} | {bleu:.2f} | {loss:.4f} |")
PY
