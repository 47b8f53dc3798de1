"""The three trained experiments of ``nmt study``: each trains the models it needs (nmt/study/runs.py),
measures them (nmt/study/measure.py; every measure cached in its run folder, so an interrupted
study resumes where it stopped) and returns its JSON, summarised over seeds."""

from __future__ import annotations

import json
from pathlib import Path

from nmt.core.files import atomic_write_text
from nmt.data.corpus import read_parallel, split_file
from nmt.study import measure
from nmt.study.runs import Budget, diverged, trained

LONG_RANGE_MODELS = ("rnn-no-attention", "rnn-one-way", "rnn-bidirectional", "transformer-h4")
HEADS = (1, 2, 4, 8)
SCALING_MODELS = {64: ("transformer-h4", "transformer-h4-unscaled"),  # d_k = 256 / heads
                  256: ("transformer-h1", "transformer-h1-unscaled")}


class Study:
    """Where the runs live, what they get, and the data they are measured on."""

    def __init__(self, budget: Budget, root: Path, log=print):
        self.budget, self.root, self.log = budget, root, log
        data = budget.data
        self.val = read_parallel(split_file(data, "val", "de"), split_file(data, "val", "en"))
        self.test = read_parallel(split_file(data, "test_2016_flickr", "de"),
                                  split_file(data, "test_2016_flickr", "en"))

    def folders(self, name: str) -> list[Path]:
        return [trained(name, seed, self.budget, self.root, self.log) for seed in self.budget.seeds]

    def measures(self, folder: Path, *keys: str) -> dict | None:
        """``keys`` of ``folder``'s model, measured once and kept in its ``study.json``; None
        for a run that diverged."""
        if diverged(folder):
            return None
        path = folder / "study.json"
        cached = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        missing = [k for k in keys if k not in cached]
        if missing:
            translator = self.translator(folder)
            for key in missing:
                self.log(f"{folder.name}: measuring {key}")
                cached[key] = self.measure(key, translator, cached)
                atomic_write_text(path, json.dumps(cached, indent=1) + "\n")
        return cached

    def translator(self, folder: Path):
        from nmt.decode.translator import Translator

        # fp32 weights and the Python decoding step: the probes act on the attention modules.
        return Translator.load(folder / "last", quantize="none")

    def measure(self, key: str, translator, cached: dict):
        b, (val_src, val_ref), (test_src, test_ref) = self.budget, self.val, self.test
        if key == "val_bleu":
            return measure.score(measure.raw_translate(translator, val_src), val_ref)
        if key == "test":
            hyps = measure.raw_translate(translator, test_src)
            return {"bleu": measure.score(hyps, test_ref), "hyps": hyps}
        if key == "long_range":  # measured after "test", whose translations it reuses
            return measure.long_range(translator, test_src, test_ref, cached["test"]["hyps"])
        if key == "probe":
            return measure.probe(translator, test_src, test_ref, b.probe_inputs)
        if key == "divergence":
            n = b.divergence_sentences
            return measure.head_divergence(translator, test_src[:n], test_ref[:n])
        if key == "masking":
            n = b.mask_sentences
            return measure.masking_costs(translator, test_src[:n], test_ref[:n])
        if key == "scores":
            from nmt.study.sqrt_dk import model_scores
            return scores_on(translator, val_src[:200], model_scores)
        raise ValueError(key)


def scores_on(translator, texts: list[str], model_scores) -> list[dict]:
    from nmt.data.batching import encode_source, pad
    from nmt.data.tokenizer import PAD_ID

    src = pad([encode_source(ids) for ids in translator.encode_sources(texts)])
    return model_scores(translator.model, src, src != PAD_ID)


def over_seeds(rows: list[dict | None], get) -> dict:
    return measure.spread([None if r is None else get(r) for r in rows])


def long_range(study: Study) -> dict:
    """RNN without attention, one-way GRU + attention, BiGRU + attention, Transformer."""
    models = {}
    for name in LONG_RANGE_MODELS:
        rows = [study.measures(f, "val_bleu", "test", "long_range", "probe")
                for f in study.folders(name)]
        first = next(r for r in rows if r is not None)
        models[name] = {
            "val_bleu": over_seeds(rows, lambda r: r["val_bleu"]),
            "test_bleu": over_seeds(rows, lambda r: r["test"]["bleu"]),
            "joined": {k: over_seeds(rows, lambda r, k=k: r["long_range"]["joined"][k]["bleu"])
                       for k in first["long_range"]["joined"]},
            "joined_length_ratio": {
                k: over_seeds(rows, lambda r, k=k: r["long_range"]["joined"][k]["length_ratio"])
                for k in first["long_range"]["joined"]},
            "by_length": [{"bucket": row["bucket"], "sentences": row["sentences"],
                           "bleu": over_seeds(rows, lambda r, i=i: r["long_range"]["by_length"][i]["bleu"])}
                          for i, row in enumerate(first["long_range"]["by_length"])],
            "probe": [{**{k: row[k] for k in ("sentences", "words", "position")},
                       "copy_rate": over_seeds(rows, lambda r, i=i: r["probe"]["rows"][i]["copy_rate"])}
                      for i, row in enumerate(first["probe"]["rows"])],
        }
    return {"experiment": "long_range", "budget": study.budget.describe(),
            "probe_inputs": study.budget.probe_inputs, "models": models}


def scaling(study: Study) -> dict:
    """The same Transformer with and without 1/sqrt(d_k), at d_k 64 and 256."""
    sizes = {}
    for d_k, (scaled, unscaled) in SCALING_MODELS.items():
        sizes[str(d_k)] = {}
        for name, label in ((scaled, "scaled"), (unscaled, "unscaled")):
            folders = study.folders(name)
            rows = [study.measures(f, "val_bleu", "scores") for f in folders]
            sizes[str(d_k)][label] = {
                "model": name, "val_bleu": over_seeds(rows, lambda r: r["val_bleu"]),
                "diverged": [diverged(f) for f in folders],
                "curves": [loss_curve(f) for f in folders],
                "variance_raw": over_seeds(rows, lambda r: mean_of(r["scores"], "variance_raw")),
                "max_probability_raw": over_seeds(
                    rows, lambda r: mean_of([x["raw"] for x in r["scores"]], "max_probability")),
            }
    return {"budget": study.budget.describe(), "sizes": sizes}


def mean_of(rows: list[dict], key: str) -> float:
    return round(sum(r[key] for r in rows) / len(rows), 4)


def loss_curve(folder: Path) -> dict:
    """Training loss by step and val loss by evaluation, from the run's metrics.jsonl."""
    path = folder / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()] if path.is_file() else []
    return {"train": [[r["step"], r["loss"]] for r in rows if r.get("kind") == "train"],
            "val": [[r["step"], r["val_loss"]] for r in rows if r.get("kind") == "eval"]}


def heads(study: Study) -> dict:
    """1, 2, 4 and 8 heads at d_model 256."""
    models = {}
    for h in HEADS:
        keys = ("val_bleu", "test", "divergence") + (("masking",) if h > 1 else ())
        rows = [study.measures(f, *keys) for f in study.folders(f"transformer-h{h}")]
        entry = {"val_bleu": over_seeds(rows, lambda r: r["val_bleu"]),
                 "test_bleu": over_seeds(rows, lambda r: r["test"]["bleu"]),
                 "divergence": over_seeds(rows, lambda r: r["divergence"]["mean"])}
        if h > 1:
            entry["masking"] = {
                key: over_seeds(rows, lambda r, key=key: r["masking"][key])
                for key in ("bleu", "mean_cost", "max_cost", "removable_share")}
            entry["masking"]["costs"] = [[x["cost"] for x in r["masking"]["heads"]]
                                         for r in rows if r is not None]
        models[str(h)] = entry
    return {"experiment": "heads", "budget": study.budget.describe(),
            "mask_sentences": study.budget.mask_sentences,
            "divergence_sentences": study.budget.divergence_sentences, "models": models}
