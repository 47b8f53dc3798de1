"""Turn a finished training run into a shipped model directory: pick, score, describe.

``nmt release runs/transformer-de-en --to models/transformer-de-en`` scores ``best/`` and
``averaged/`` on the validation split with beam search, keeps the better one (test data is never
used to choose), scores it on val and test, and writes ``metrics.json`` and a model card. The
val and test pairs are the run's (``data.json``: the user's files or those drawn from the corpus,
in the run's token store), else Multi30k's val and test_2016_flickr.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from nmt.core.config import DEFAULT_PRECISION
from nmt.core.errors import NmtError
from nmt.core.files import staged
from nmt.data.corpus import read_parallel, split_file
from nmt.data.store import TokenStore
from nmt.data.tokenizer import Tokenizer
from nmt.decode.target_vocabulary import add_target_vocabularies
from nmt.decode.translator import Translator
from nmt.evaluate.scoring import bleu, score_all
from nmt.models.directory import TARGET_VOCABULARIES, write_checksums


def score_directions(translator: Translator, data: str, split: str, beam_size: int) -> dict:
    """``score_split`` of a bilingual model; of a multilingual one, each direction's under
    "pairs" and the mean of each figure over them (what release chooses by)."""
    if len(translator.pairs) == 1:
        return score_split(translator, data, split, beam_size)
    pairs = {f"{s}-{t}": score_split(translator.for_pair(s, t), data, split, beam_size)
             for s, t in translator.pairs}
    first = next(iter(pairs.values()))
    mean = {key: round(sum(p[key] for p in pairs.values()) / len(pairs), 2)
            for key in ("bleu", "bleu_lc", "chrf", "sentences_per_second")}
    return {**first, **mean, "sentences": sum(p["sentences"] for p in pairs.values()),
            "mean_of": list(pairs), "pairs": pairs}


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
| direction | {direction} |
| architecture | {arch} |
| parameters | {parameters:,} |
| vocabulary | joint SentencePiece {spm_type}, {vocab} pieces |
| training data | {training_data}{targets}{augmented} |
| model selection | `{selected}/` of the run and length penalty {alpha}, chosen by val BLEU (beam {beam}) |
| long sentences | {clause_split} (chosen on val sentences joined 2-6 at a time, plain val kept) |
| training time | {minutes} minutes of training steps |
| hardware | {hardware} |

## Scores

Detokenized sacreBLEU on {scored_on}, beam {beam}, length penalty {alpha}, {weights} weights
(`nmt translate --quantize {quantize}`).

| split | BLEU | BLEU (lowercased) | chrF |
|---|---|---|---|
{rows}

Signatures: `{bleu_sig}`, `{lc_sig}`, `{chrf_sig}`.

## Reproduce

```
{fetch}{command}
nmt release runs/{run} --to models/{name}
```

## Terms

The code is MIT-licensed. {terms}
"""
MULTI30K_TERMS = """The weights are trained on Multi30k, which its authors provide for
non-commercial research and educational purposes only (it is partly derived from Flickr30K);
this model inherits those terms."""


LENGTH_PENALTIES = (0.6, 1.0, 1.5, 2.0)  # GNMT alpha values release tries on val
# decode.clause_split_tokens values release tries on val and its joined (long-k) sets; one may
# cost plain val at most PLAIN_TOLERANCE BLEU (captions with commas are split too).
CLAUSE_SPLITS = (0, 32, 48, 64, 96)
PLAIN_TOLERANCE = 0.2


def with_decode(translator: Translator, **values) -> Translator:
    """The translator (and its other directions) with these decode settings."""
    config = translator.config.replace(
        decode=dataclasses.replace(translator.config.decode, **values))
    for view in translator.views.values():
        view.config = config
    return translator


def with_length_penalty(translator: Translator, alpha: float) -> Translator:
    return with_decode(translator, length_penalty=alpha)


def choose_clause_split(translator: Translator, data: str, beam_size: int,
                        candidates: tuple[int, ...], log) -> dict:
    """Set ``decode.clause_split_tokens`` to the candidate with the best mean BLEU on val's long-k
    sets (val sentences joined into one: nmt/evaluate/robustness.py) among those that keep plain val
    within ``PLAIN_TOLERANCE`` BLEU of translating every sentence whole; their scores."""
    from nmt.evaluate.robustness import LONG_KS, long_set

    sets = []  # per direction: its val and val joined k at a time
    for src, tgt in translator.pairs:
        sources, references = read_parallel(split_file(data, "val", src),
                                            split_file(data, "val", tgt))
        sets.append((translator.for_pair(src, tgt), sources, references,
                     [long_set(sources, references, src, tgt, k) for k in LONG_KS]))
    scores = {}
    for tokens in candidates:
        with_decode(translator, clause_split_tokens=tokens)
        plain, long = [], []
        for view, sources, references, joined in sets:
            plain.append(bleu(view.translate(sources, beam_size=beam_size), references)[0].score)
            long += [bleu(view.translate(j.sources, beam_size=beam_size), j.references)[0].score
                     for j in joined]
        plain = sum(plain) / len(plain)
        scores[tokens] = {"plain": round(plain, 2), "long_mean": round(sum(long) / len(long), 2)}
        log(f"clause split over {tokens or 'no'} subwords: val BLEU {plain:.2f}, val joined "
            f"{'/'.join(map(str, LONG_KS))} at a time {scores[tokens]['long_mean']:.2f} (mean)")
    whole = scores.get(0, max(scores.values(), key=lambda s: s["plain"]))["plain"]
    eligible = [t for t in candidates if scores[t]["plain"] >= whole - PLAIN_TOLERANCE]
    with_decode(translator, clause_split_tokens=max(eligible, key=lambda t: scores[t]["long_mean"]))
    return scores


def choose_on_val(run_dir: Path, data: str, beam_size: int, quantize: str,
                  penalties: tuple[float, ...], log) -> tuple[Path, Translator, dict, dict]:
    """The run's best/ or averaged/ and the length penalty with the highest val BLEU."""
    candidates = [run_dir / name for name in ("best", "averaged") if (run_dir / name).is_dir()]
    if not candidates:
        raise NmtError(f"{run_dir}: no best/ or averaged/ model directory (has training finished?)")
    if not all((c / TARGET_VOCABULARIES).is_file() for c in candidates):
        add_target_vocabularies(candidates, TokenStore(run_data(run_dir)["store"]),
                                Tokenizer(candidates[0] / "spm.model"), log)
    scored, all_scores = [], {}
    for path in candidates:
        translator = Translator.load(path, quantize=quantize)
        for alpha in penalties:
            val = score_directions(with_length_penalty(translator, alpha), data, "val", beam_size)
            log(f"{path.name}: val BLEU {val['bleu']:.2f} (beam {beam_size}, length penalty {alpha})")
            scored.append((val["bleu"], path, alpha, val))
            all_scores[f"{path.name} lp={alpha}"] = val
    _, chosen, alpha, val = max(scored, key=lambda item: item[0])
    translator = with_length_penalty(Translator.load(chosen, quantize=quantize), alpha)
    return chosen, translator, val, all_scores


def training_command(run_dir: Path, config) -> str:
    """The command that trained the run, as ``nmt train`` recorded it."""
    recorded = run_dir / "command.txt"
    if recorded.is_file():
        return recorded.read_text(encoding="utf-8").strip()
    return f"nmt train --config configs/{config.name}.toml"


def run_data(run_dir: Path) -> dict:
    """The run's ``data.json``: its token store, and the folder and test split of its pairs."""
    path = run_dir / "data.json"
    if not path.is_file():
        raise NmtError(f"{path}: missing (a run made before token stores); give --data and "
                       "--test-split")
    return json.loads(path.read_text(encoding="utf-8"))


def release(run_dir: Path, to: Path, data: str | None = None, test_split: str | None = None,
            beam_size: int = 4,
            command: str = "", quantize: str = DEFAULT_PRECISION, log=print,
            penalties: tuple[float, ...] = LENGTH_PENALTIES,
            clause_splits: tuple[int, ...] = CLAUSE_SPLITS, replace: bool = False,
            replace_better: bool = False) -> Path:
    """``run_dir`` scored and written to the model directory ``to``. An existing ``to`` is
    replaced only with ``replace``, and one with a higher val BLEU only with ``replace_better``
    as well (``nmt release --force``, ``--force --force``)."""
    if to.exists() and not replace:
        raise NmtError(f"{to}: already exists; a release writes a new model directory (--force "
                       "to replace it)")
    if data is None:
        recorded = run_data(run_dir) if (run_dir / "data.json").is_file() else {}
        data = recorded.get("eval_data", "data/multi30k")
        test_split = test_split or recorded.get("test_split")
    test_split = test_split or "test_2016_flickr"
    chosen, translator, val, candidates = choose_on_val(run_dir, data, beam_size, quantize,
                                                        penalties, log)
    split_scores = choose_clause_split(translator, data, beam_size, clause_splits, log)
    config = translator.config
    if config.decode.clause_split_tokens:  # val as the shipped model translates it
        val = score_directions(translator, data, "val", beam_size)
    test = score_directions(translator, data, test_split, beam_size)
    log(f"chose {chosen.name}/ with length penalty {config.decode.length_penalty}: "
        f"{test_split} BLEU {test['bleu']:.2f}, chrF {test['chrf']:.2f}")
    training = json.loads((chosen / "metrics.json").read_text())["training"] \
        if (chosen / "metrics.json").is_file() else {}
    per_pair = {"pairs": {pair: {"val": val["pairs"][pair], test_split: m}
                          for pair, m in test["pairs"].items()}} if "pairs" in test else {}
    val, test = ({k: v for k, v in m.items() if k != "pairs"} for m in (val, test))
    metrics = {"val": val, test_split: test, **per_pair, "selected": chosen.name,
               "length_penalty": config.decode.length_penalty,
               "clause_split_tokens": config.decode.clause_split_tokens,
               "candidates": candidates, "clause_split_candidates": split_scores,
               "training": training}
    if to.exists() and not replace_better:
        refuse_a_worse_release(to, val["bleu"])
    card = model_card(to.name, config, translator, training, chosen.name, beam_size, quantize,
                      val, test, command or training_command(run_dir, config), run_dir.name,
                      per_pair.get("pairs", {}), test_split)
    with staged(to) as staging:
        for name in ("model.safetensors", "spm.model", TARGET_VOCABULARIES):
            shutil.copyfile(chosen / name, staging / name)
        (staging / "config.json").write_text(config.to_json(), encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / "README.md").write_text(card, encoding="utf-8")
        write_checksums(staging)
    log(f"wrote {to}")
    return to


def refuse_a_worse_release(to: Path, new_val_bleu: float) -> None:
    """NmtError when the model directory ``to`` has a higher val BLEU than the release that
    would replace it (the mean over its directions, as release chooses by)."""
    try:
        old = json.loads((to / "metrics.json").read_text())["val"]["bleu"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no scores to compare with
    if old > new_val_bleu:
        raise NmtError(f"{to}: its val BLEU {old:.2f} is above this release's {new_val_bleu:.2f}; "
                       "not replaced (--force --force replaces it anyway)")


def model_card(name: str, config, translator: Translator, training: dict, selected: str,
               beam_size: int, quantize: str, val: dict, test: dict, command: str,
               run: str, per_pair: dict | None = None,
               test_split: str = "test_2016_flickr") -> str:
    scored = [("val", val), (test_split, test)]
    if per_pair:  # each direction, then their mean (what release chose by)
        scored = [(f"{split} {pair}", scores[split]) for split, _ in scored
                  for pair, scores in per_pair.items()] + [(f"{split}, mean", m)
                                                           for split, m in scored]
    rows = "\n".join(f"| {label} | {m['bleu']:.2f} | {m['bleu_lc']:.2f} | {m['chrf']:.2f} |"
                     for label, m in scored)
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
    return CARD.format(
        name=name, description=description,
        direction=", ".join(f"{s} → {t}" for s, t in translator.pairs),
        **card_data(config, len(translator.pairs)),
        arch=arch, parameters=training.get("parameters", translator.parameters),
        spm_type=config.data.spm_model_type, vocab=translator.tokenizer.vocab_size,
        selected=selected, beam=beam_size, minutes=training.get("training_minutes", "?"),
        hardware=training.get("hardware", "?"), alpha=config.decode.length_penalty, rows=rows,
        weights="fp32" if quantize == "none" else quantize, quantize=quantize,
        bleu_sig=test["bleu_signature"], lc_sig=test["bleu_lc_signature"],
        chrf_sig=test["chrf_signature"], command=command, run=run, augmented=augmented(config),
        targets=targets(config),
        clause_split=(f"sentences over {config.decode.clause_split_tokens} subwords translated "
                      "clause by clause" if config.decode.clause_split_tokens else
                      "long sentences translated whole"))


def card_data(config, directions: int) -> dict:
    """What the card says of the training corpus, the scored pairs and the terms."""
    from nmt.data.prepare import own_corpus, training_corpora

    if own_corpus(config.data):
        specs = ", ".join(f"`{c.spec}`" + (f" (weight {c.weight:g})" if c.weight != 1 else "")
                          for c in training_corpora(config.data))
        return {"training_data": specs, "scored_on": "the run's val and test pairs",
                "fetch": "", "terms": "The weights inherit the terms of the corpus they were "
                "trained on."}
    corpus = (f"29,000 captions in each language, {directions} directions (the target language "
              "a tag before the source)" if directions > 1 else "29,000 sentence pairs")
    return {"training_data": f"Multi30k (task 1) train, {corpus}", "scored_on": "Multi30k",
            "fetch": "nmt data fetch multi30k\n", "terms": MULTI30K_TERMS}


def targets(config) -> str:
    """The card's note on where the training targets came from, when not the references."""
    d = config.data
    if d.teacher and d.keep_references:
        return (f"; each pair twice, with its reference and with the translation by "
                f"`{d.teacher}` (sequence-level distillation, nmt/train/distill.py)")
    if d.teacher:
        return (f"; targets translated by `{d.teacher}` (sequence-level distillation, "
                "nmt/train/distill.py)")
    return ""


def augmented(config) -> str:
    """The card's note on nmt/data/augment.py's transforms, as the config set them."""
    d = config.data
    parts = [f"{d.join_fraction:.0%} more joined from 2-{d.join_max} consecutive pairs"
             if d.join_fraction else "",
             f"{d.lowercase_fraction:.0%} more with the source lowercased"
             if d.lowercase_fraction else "",
             f"shared numbers as placeholders in {d.placeholder_fraction:.0%} of the pairs having them"
             if d.placeholder_fraction else "",
             f"a placeholder or invented name in {d.span_fraction:.0%}"
             + (f" ({d.real_name_share:.0%} of the names real ones)" if d.real_name_share else "")
             if d.span_fraction else ""]
    parts = [p for p in parts if p]
    return "; augmented (nmt/data/augment.py): " + ", ".join(parts) if parts else ""
