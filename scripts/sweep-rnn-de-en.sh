#!/usr/bin/env bash
# The RNN baseline's val-only sweep (docs/TUNING.md): each setting trains a fixed number of epochs,
# then the table of val BLEU (greedy) and val loss per setting is printed. Coordinate search: the
# learning rate first (from the Transformer's 1e-3), then dropout and the hidden size at the
# better rate. On a 2-core CPU the runs go one after another.
#   bash scripts/sweep-rnn-de-en.sh [EPOCHS] [JOBS]
set -euo pipefail
python "$(dirname "$0")/sweep.py" --config configs/rnn-de-en.toml --out runs/sweep-rnn-de-en \
  --epochs "${1:-5}" --jobs "${2:-1}" \
  "h512-d0.3 model.hidden_size=512 model.dropout=0.3 train.lr=1e-3" \
  "h512-d0.3-lr2e-3 model.hidden_size=512 model.dropout=0.3 train.lr=2e-3" \
  "h512-d0.2-lr2e-3 model.hidden_size=512 model.dropout=0.2 train.lr=2e-3" \
  "h768-d0.3-lr2e-3 model.hidden_size=768 model.dropout=0.3 train.lr=2e-3"
