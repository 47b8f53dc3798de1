"""Turn a finished training run into a shipped model directory: pick, score, describe.

``nmt release runs/transformer-de-en --to models/transformer-de-en`` scores ``best/`` and
``averaged/`` on the validation split with beam search, keeps the better one (test data is never
used to choose), scores it on val and test_2016_flickr, and writes ``metrics.json`` and a model card.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from nmt.checkpoint import replace_dir
from nmt.config import DEFAULT_PRECISION
from nmt.corpus import read_parallel, split_file
from nmt.errors import NmtError
from nmt.scoring import score_all
from nmt.translator import Translator


def score_split(translator: Translator, data: str, split: str, beam_size: int) -> dict:
    src_path = split_file(data, split, translator.src_lang)
    tgt_path = split_file(data, split, translator.tgt_lang)
    sources, references = read_parallel(src_path, tgt_path)
    start = time.perf_counter()
    hypotheses = translator.translate(sources, beam_size=beam_size)
    seconds = time.perf_counter() - start
    return {**score_all(hypotheses, references), "beam_size": beam_size,
            "precision": translator.precision,
            "sentences_per_second": round(len(sources) / seconds, 1)}


CARD = """# {name}

{description}

| | |
|---|---|
| direction | {src} → {tgt} |
| architecture | {arch} |
| parameters | {parameters:,} |
| vocabulary | joint SentencePiece {spm_type}, {vocab} pieces |
| training data | Multi30k (task 1) train, 29,000 sentence pairs |
| model selection | `{selected}/` of the run, chosen by val BLEU (beam {beam}) over the others |
| training time | {minutes} minutes of training steps |
| hardware | {hardware} |

## Scores

Detokenized sacreBLEU on Multi30k, beam {beam}, length penalty {alpha}, {weights} weights
(`nmt translate --quantize {quantize}`).

| split | BLEU | BLEU (lowercased) | chrF |
|---|---|---|---|
{rows}

Signatures: `{bleu_sig}`, `{lc_sig}`, `{chrf_sig}`.

## Reproduce

```
nmt data fetch multi30k
{command}
nmt release runs/{run} --to models/{name}
```

## Terms

The code is MIT-licensed. The weights are trained on Multi30k, which its authors provide for
non-commercial research and educational purposes only (it is partly derived from Flickr30K);
this model inherits those terms.
"""


def release(run_dir: Path, to: Path, data: str = "data/multi30k", beam_size: int = 4,
            command: str = "", quantize: str = DEFAULT_PRECISION, log=print) -> Path:
    candidates = [run_dir / name for name in ("best", "averaged") if (run_dir / name).is_dir()]
    if not candidates:
        raise NmtError(f"{run_dir}: no best/ or averaged/ model directory (has training finished?)")
    scored = []
    for path in candidates:
        translator = Translator.load(path, quantize=quantize)
        val = score_split(translator, data, "val", beam_size)
        log(f"{path.name}: val BLEU {val['bleu']:.2f} (beam {beam_size})")
        scored.append((val["bleu"], path, translator, val))
    _, chosen, translator, val = max(scored, key=lambda item: item[0])
    test = score_split(translator, data, "test_2016_flickr", beam_size)
    log(f"chose {chosen.name}/: test_2016_flickr BLEU {test['bleu']:.2f}, chrF {test['chrf']:.2f}")
    training = json.loads((chosen / "metrics.json").read_text())["training"] \
        if (chosen / "metrics.json").is_file() else {}
    config = translator.config
    metrics = {"val": val, "test_2016_flickr": test, "selected": chosen.name,
               "candidates": {p.name: s for s, p, _, _ in scored}, "training": training}
    rows = "\n".join(f"| {split} | {m['bleu']:.2f} | {m['bleu_lc']:.2f} | {m['chrf']:.2f} |"
                     for split, m in (("val", val), ("test_2016_flickr", test)))
    m = config.model
    if m.arch == "transformer":
        arch = (f"Transformer, pre-norm, {m.n_encoder_layers}+{m.n_decoder_layers} layers, "
                f"d_model {m.d_model}, {m.n_heads} heads, d_ff {m.d_ff}")
    else:
        arch = (f"bidirectional GRU encoder ({m.hidden_size // 2} per direction), additive "
                f"(Bahdanau) attention, GRU decoder ({m.hidden_size}), embeddings {m.embed_dim}")
    description = ("An encoder-decoder Transformer trained from scratch by nmt."
                   if config.model.arch == "transformer" else
                   "The RNN baseline of nmt, trained with the same data, vocabulary size, search "
                   "and time budget as the Transformer.")
    card = CARD.format(
        name=to.name, description=description, src=config.data.src_lang, tgt=config.data.tgt_lang,
        arch=arch, parameters=training.get("parameters", translator.parameters),
        spm_type=config.data.spm_model_type, vocab=translator.tokenizer.vocab_size,
        selected=chosen.name, beam=beam_size, minutes=training.get("training_minutes", "?"),
        hardware=training.get("hardware", "?"), alpha=config.decode.length_penalty, rows=rows,
        weights="fp32" if quantize == "none" else quantize, quantize=quantize,
        bleu_sig=test["bleu_signature"], lc_sig=test["bleu_lc_signature"],
        chrf_sig=test["chrf_signature"],
        command=command or f"nmt train --config configs/{config.name}.toml",
        run=run_dir.name)
    to.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=to.parent, prefix=f".{to.name}.tmp-"))
    for name in ("config.json", "model.safetensors", "spm.model"):
        shutil.copyfile(chosen / name, staging / name)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (staging / "README.md").write_text(card, encoding="utf-8")
    replace_dir(staging, to)
    log(f"wrote {to}")
    return to
