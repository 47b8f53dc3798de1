"""``nmt align``: every alignment method of each model on a gold set, beside eflomal, with the
faithfulness checks; JSON and a Markdown table (nmt/evaluate/explain.py says what is measured)."""

from __future__ import annotations

import json
from pathlib import Path

from nmt.core.files import atomic_write_text
from nmt.evaluate import explain
from nmt.evaluate.alignment import read_gold


def model_report(model_dir: Path, gold, pair: tuple[str, str], log) -> dict:
    from nmt.decode.alignment import method_names, served_method
    from nmt.decode.translator import Translator
    from nmt.evaluate.tags import tag_placement

    # fp32 weights: the gradient method differentiates through them
    translator = Translator.load(model_dir, quantize="none").for_pair(*pair)
    model = translator.model
    methods = method_names(model)
    log(f"{model_dir.name} {'-'.join(pair)}: {len(methods)} methods on {len(gold)} pairs")
    pairs = explain.pairs_of(translator, gold)
    matrices = explain.word_matrices(model, pairs, methods, log)
    table = explain.grid(matrices, gold)
    layers = [m for m in methods if m.startswith("attention") and m.count(":") == 1]
    report = {"model": str(model_dir), "methods": table,
              "best": dict(zip(("method", "rule", "scores"), explain.best(table))),
              "served": dict(zip(("method", "rule"), served_method(model))),
              "tags": tag_placement(translator, gold)}
    if layers:
        best_layer = min(layers, key=lambda m: min(s["aer"] for s in table[m].values()))
        report["agreement"] = {
            "attention": best_layer,
            "saliency": explain.rank_agreement(matrices[best_layer], matrices["saliency"]),
            "leave-one-out": explain.rank_agreement(matrices[best_layer], matrices["leave-one-out"]),
            "saliency_vs_leave_one_out": explain.rank_agreement(matrices["saliency"],
                                                                matrices["leave-one-out"])}
        report["ablation"] = [explain.ablation(model, pairs, int(m.split(":")[1]), how)
                              for m in layers for how in ("permuted", "uniform")]
    return report


def align_report(models: list[str], gold_stem: str, pair: str, out: Path,
                 baseline_corpus: str | None = "data/multi30k", log=print) -> dict:
    """Each model in ``models`` on the gold set ``gold_stem`` (NAME.txt + NAME.talp), and eflomal
    trained on ``baseline_corpus``'s train split plus the gold sentences."""
    gold = read_gold(gold_stem)
    src_lang, tgt_lang = pair.split("-")
    result = {"gold": str(gold_stem), "pair": pair, "pairs": len(gold),
              "models": {Path(m).name: model_report(Path(m), gold, (src_lang, tgt_lang), log)
                         for m in models}}
    if baseline_corpus:
        result["eflomal"] = baseline(baseline_corpus, gold, src_lang, tgt_lang, log)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(gold_stem).name
    atomic_write_text(out / f"{name}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / f"{name}.md", render(result))
    log(f"wrote {out}/{name}.json and {name}.md")
    return result


def baseline(corpus: str, gold, src_lang: str, tgt_lang: str, log) -> dict:
    from nmt.data.corpus import read_lines, split_file
    from nmt.evaluate.alignment import alignment_scores
    from nmt.evaluate.statistical import eflomal_links

    log(f"eflomal on {corpus} train + the gold sentences")
    lines = (read_lines(split_file(corpus, "train", src_lang)),
             read_lines(split_file(corpus, "train", tgt_lang)))
    links = eflomal_links(lines, [g.src for g in gold], [g.tgt for g in gold])
    return {rule: alignment_scores(found, gold) for rule, found in links.items()}


def render(result: dict) -> str:
    lines = [f"# Word alignment on {result['gold']} ({result['pair']}, {result['pairs']} pairs)",
             "", "AER / precision / recall (%), lower AER is better; `nmt align`.", ""]
    for name, report in result["models"].items():
        rules = list(next(iter(report["methods"].values())))
        lines += [f"## {name}", "", "| method | " + " | ".join(rules) + " |",
                  "|---" * (len(rules) + 1) + "|"]
        for method, by_rule in report["methods"].items():
            lines.append(f"| {method} | " + " | ".join(
                f"{s['aer']:.1f} / {s['precision']:.0f} / {s['recall']:.0f}"
                for s in by_rule.values()) + " |")
        best, served, tags = report["best"], report["served"], report["tags"]
        lines += ["", f"Best: {best['method']} with {best['rule']}, AER {best['scores']['aer']:.1f}; "
                  f"served: {served['method']} with {served['rule']}, AER "
                  f"{report['methods'][served['method']][served['rule']]['aer']:.1f}. Tags placed "
                  f"exactly around their gold words: {tags['exact']:.1%} of {tags['tags']} "
                  f"({tags['lost_or_repeated']} lost or repeated).", ""]
        if "agreement" in report:
            a = report["agreement"]
            lines += [f"Kendall tau of {a['attention']} with the gradient {a['saliency']}, with "
                      f"leave-one-out {a['leave-one-out']} (gradient with leave-one-out "
                      f"{a['saliency_vs_leave_one_out']}).", "",
                      "| layer | replaced by | top-1 predictions changed | gold log-prob change |",
                      "|---|---|---|---|"]
            lines += [f"| {x['layer']} | {x['replacement']} | {x['top1_changed']:.1%} | "
                      f"{x['gold_log_prob_change']:+.3f} |" for x in report["ablation"]]
        lines.append("")
    if "eflomal" in result:
        lines += ["## eflomal (statistical baseline)", "", "| symmetrisation | AER | P | R |",
                  "|---|---|---|---|"]
        lines += [f"| {rule} | {s['aer']:.1f} | {s['precision']:.0f} | {s['recall']:.0f} |"
                  for rule, s in result["eflomal"].items()]
    return "\n".join(lines) + "\n"
