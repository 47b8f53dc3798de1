"""What each input-handling measure is worth, on robustness sets built from val (never test).

    python scripts/robustness_ablation.py --model models/transformer-de-en [--model ...]

For each model: the robustness sets with everything on, then with one measure off at a time
(pass-through placeholders, the repair of names copied with a letter wrong, lowering capitals,
truecasing lowercase input, the clause-split retry of short translations), and
the plain set at several length penalties. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt.data.corpus import read_parallel, split_file  # noqa: E402
from nmt.decode.translator import Translator  # noqa: E402
from nmt.evaluate.robustness import build_sets, evaluate_robustness, source_lengths  # noqa: E402

FIGURES = {"plain": ("plain", "bleu"), "plain length ratio": ("plain", "length_ratio"),
           "long-3": ("long-3", "bleu"), "long-3 one by one": ("long-3", "one_by_one_bleu"),
           "long-3 length ratio": ("long-3", "length_ratio"), "plain lc": ("plain", "bleu_lc"),
           "upper lc": ("upper", "bleu_lc"), "lower lc": ("lower", "bleu_lc"),
           "pass copied": ("pass", "copied"), "pass": ("pass", "bleu")}


def summary(result: dict) -> dict:
    rows = {r["set"]: r for r in result["sets"]}
    return {name: rows[s][key] for name, (s, key) in FIGURES.items() if s in rows}


def decode_with(translator: Translator, **decode) -> Translator:
    translator.config = translator.config.replace(
        decode=dataclasses.replace(translator.config.decode, **decode))
    return translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--data", default="data/multi30k")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--penalties", default="0.6,1.0,1.5,2.0")
    args = parser.parse_args()
    out = {}
    for model in args.model:
        translator = Translator.load(model)
        src_lang, tgt_lang = translator.src_lang, translator.tgt_lang
        sources, references = read_parallel(split_file(args.data, "val", src_lang),
                                            split_file(args.data, "val", tgt_lang))
        sets = build_sets(sources, references, src_lang, tgt_lang)
        lengths = source_lengths(translator.tokenizer, sets)
        quiet = lambda *a: None  # noqa: E731
        by_name = {s.name: s for s in sets}

        def measure(names):  # only the sets a measure can change, with the plain set
            chosen = [by_name[n] for n in ["plain", *names]]
            return summary(evaluate_robustness(translator, chosen, args.beam, lengths, quiet))

        rows = {"all on": summary(evaluate_robustness(translator, sets, args.beam, lengths, quiet))}
        all_on = translator
        for flag, names in (("pass_through", ["pass"]), ("repair_names", ["pass"]),
                            ("lower_capitals", ["upper"]), ("truecase", ["upper", "lower"])):
            translator = all_on.with_options(**{flag: False})
            rows[f"{flag} off"] = measure(names)
        translator = all_on
        ratio = translator.config.decode.min_length_ratio
        decode_with(translator, min_length_ratio=0.0)
        rows["clause retry off"] = measure(["long-3", "long-6"])
        decode_with(translator, min_length_ratio=ratio)
        alpha = translator.config.decode.length_penalty
        for penalty in (float(p) for p in args.penalties.split(",")):
            decode_with(translator, length_penalty=penalty)
            rows[f"length penalty {penalty}"] = measure(["long-3"])
        decode_with(translator, length_penalty=alpha)
        out[model] = rows
        print(json.dumps({model: rows}, indent=1), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
