#!/usr/bin/env bash
# The distilled Transformer's val-only sweep (docs/TUNING.md, "Learning from the multilingual
# model"): each setting trains to the config's train.max_steps (5,200 updates, what 45 minutes
# on the 2 cores give), so each run stands for a release candidate. Targets are the multilingual
# model's translations of the training captions (data/distilled/train.en, made below by
# `nmt translate` of train.de: the same file data.teacher makes), given as files so that no run
# distils again (for a GPU machine without models/, make them here and carry data/distilled);
# "mix" trains on the references and the distilled targets together (data/distilled/mix.{de,en}:
# train.de twice, the references then the distilled targets). Meant for a GPU, where several runs
# share it; on a 2-core CPU pass JOBS=1 and expect 45 minutes per setting.
# Round 2 sets the RNN beside the best "mix" settings (the RNN stops at 3,900 updates, what
# its 45 minutes gave); round 3 looks closer at dropout 0.1.
#   bash scripts/sweep-transformer-de-en-kd.sh [ROUND] [JOBS]
set -euo pipefail
# The targets once, as files (2.5 minutes on 2 cores), not once per run.
mkdir -p data/distilled
if [ ! -s data/distilled/train.en ]; then
  zcat data/multi30k/train.de.gz | nmt translate --model models/transformer-multi30k \
    --source de --target en > data/distilled/train.en.part
  mv data/distilled/train.en.part data/distilled/train.en
fi
if [ ! -s data/distilled/mix.en ]; then
  (zcat data/multi30k/train.de.gz; zcat data/multi30k/train.de.gz) > data/distilled/mix.de
  (zcat data/multi30k/train.en.gz; cat data/distilled/train.en) > data/distilled/mix.en
fi
kd="data.teacher= data.src_file=data/multi30k/train.de.gz data.tgt_file=data/distilled/train.en"
mix="data.teacher= data.src_file=data/distilled/mix.de data.tgt_file=data/distilled/mix.en"
sweep="python $(dirname "$0")/sweep.py --epochs 20 --jobs ${2:-10}"
if [ "${1:-1}" = 1 ]; then
$sweep --config configs/transformer-de-en.toml --out runs/sweep-transformer-de-en-kd \
  "kd-s1 $kd" \
  "kd-s2 $kd train.seed=2" \
  "kd-s3 $kd train.seed=3" \
  "mix-s1 $mix" \
  "mix-s2 $mix train.seed=2" \
  "kd-ls0.1 $kd train.label_smoothing=0.1" \
  "kd-d0.2 $kd model.dropout=0.2" \
  "mix-d0.2 $mix model.dropout=0.2" \
  "kd-h8 $kd model.n_heads=8" \
  "kd-w400 $kd train.warmup_steps=400"
elif [ "$1" = 2 ]; then
rnn="train.max_steps=3900"
$sweep --jobs 4 --config configs/rnn-de-en.toml --out runs/sweep-rnn-de-en-kd \
  "rnn-kd-s1 $kd $rnn" \
  "rnn-mix-s1 $mix $rnn" \
  "rnn-mix-s2 $mix $rnn train.seed=2" \
  "rnn-mix-d0.1 $mix $rnn model.dropout=0.1" &
$sweep --jobs 6 --config configs/transformer-de-en.toml --out runs/sweep-transformer-de-en-kd \
  "mix-d0.2-s2 $mix model.dropout=0.2 train.seed=2" \
  "mix-d0.2-s3 $mix model.dropout=0.2 train.seed=3" \
  "mix-d0.1 $mix model.dropout=0.1" \
  "mix-d0.2-ls0.1 $mix model.dropout=0.2 train.label_smoothing=0.1" \
  "mix-d0.2-4800 $mix model.dropout=0.2 train.max_steps=4800" \
  "mix-d0.2-h8 $mix model.dropout=0.2 model.n_heads=8"
wait
else
$sweep --config configs/transformer-de-en.toml --out runs/sweep-transformer-de-en-kd \
  "mix-d0.1-s2 $mix model.dropout=0.1 train.seed=2" \
  "mix-d0.1-s3 $mix model.dropout=0.1 train.seed=3" \
  "mix-d0.1-4800 $mix model.dropout=0.1 train.max_steps=4800" \
  "mix-d0.1-ls0.1 $mix model.dropout=0.1 train.label_smoothing=0.1" \
  "mix-d0.0 $mix model.dropout=0.0" \
  "mix-d0.1-w400 $mix model.dropout=0.1 train.warmup_steps=400"
fi
