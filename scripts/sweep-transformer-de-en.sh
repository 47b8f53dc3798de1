#!/usr/bin/env bash
# The Transformer's val-only sweep (docs/TUNING.md): 20 epochs per setting, about what the
# 40-minute CPU budget trains, so each run stands for a release candidate. Meant for a GPU, where
# training picks the GPU by itself and several runs share it (about 8 minutes for 8 settings on
# one H100); on a 2-core CPU pass JOBS=1 and expect 40 minutes per setting.
#   bash scripts/sweep-transformer-de-en.sh [EPOCHS] [JOBS]
set -euo pipefail
python "$(dirname "$0")/sweep.py" --config configs/transformer-de-en.toml \
  --out runs/sweep-transformer-de-en --epochs "${1:-20}" --jobs "${2:-8}" \
  "lr1e-3-d0.2-ls0.1 train.lr=1e-3 model.dropout=0.2 train.label_smoothing=0.1" \
  "lr2e-3-d0.1-ls0.1 train.lr=2e-3 model.dropout=0.1 train.label_smoothing=0.1" \
  "lr2e-3-d0.2-ls0.1 train.lr=2e-3 model.dropout=0.2 train.label_smoothing=0.1" \
  "lr2e-3-d0.3-ls0.1 train.lr=2e-3 model.dropout=0.3 train.label_smoothing=0.1" \
  "lr2e-3-d0.2-ls0.2 train.lr=2e-3 model.dropout=0.2 train.label_smoothing=0.2" \
  "lr2e-3-d0.3-ls0.2 train.lr=2e-3 model.dropout=0.3 train.label_smoothing=0.2" \
  "lr3e-3-d0.2-ls0.1 train.lr=3e-3 model.dropout=0.2 train.label_smoothing=0.1" \
  "lr3e-3-d0.3-ls0.1 train.lr=3e-3 model.dropout=0.3 train.label_smoothing=0.1"
