"""The study's page (``reports/study/README.md``): a section per experiment, written from its JSON,
each with its figure and a verdict computed from the numbers (never typed in by hand).

A difference is called clear only when the seeds' ranges do not overlap; otherwise it is
reported as within the seed spread."""

from __future__ import annotations

from pathlib import Path

from nmt.core.files import atomic_write_text


def fmt(spread: dict, percent: bool = False) -> str:
    """Mean (min-max) over seeds; "-" where nothing was measured (no input of that length, or
    every run diverged: the tables say which)."""
    if spread["mean"] is None:
        return "-"
    if percent:
        return (f"{spread['mean']:.0%} ({spread['min']:.0%}-{spread['max']:.0%})"
                if spread["min"] != spread["max"] else f"{spread['mean']:.0%}")
    return (f"{spread['mean']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"
            if spread["min"] != spread["max"] else f"{spread['mean']:.2f}")


def versus(a: dict, b: dict) -> str:
    """How ``a`` compares with ``b`` over seeds: "clearly above", "clearly below" or "within
    the seed spread of"."""
    if a["mean"] is None or b["mean"] is None:
        return "not comparable with (a run diverged)"
    if a["min"] > b["max"]:
        return "clearly above"
    if a["max"] < b["min"]:
        return "clearly below"
    return "within the seed spread of"


def write_section(page: Path, name: str, text: str) -> None:
    """The page with ``name``'s section replaced (or added); other experiments' stay."""
    start, end = f"<!-- study:{name} -->", f"<!-- /study:{name} -->"
    current = page.read_text(encoding="utf-8") if page.is_file() else (
        "# The lecture's claims, measured\n\nWritten by `nmt study` (docs/STUDY.md says how to "
        "run it); each section by one experiment, from its JSON beside this page. Ranges are "
        "min-max over seeds.\n")
    block = f"{start}\n{text}{end}\n"
    if start in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    atomic_write_text(page, current)


# ----------------------------------------------------------------------------- long range


def probe_at(model: dict, position: str, longest: bool) -> dict:
    rows = [r for r in model["probe"] if r["position"] == position]
    return (rows[-1] if longest else rows[0])


def long_range_verdicts(result: dict) -> dict:
    m = result["models"]
    one, bi, tr = m["rnn-one-way"], m["rnn-bidirectional"], m["transformer-h4"]
    words = probe_at(one, "start", True)["words"]
    start, end = probe_at(one, "start", True)["copy_rate"], probe_at(one, "end", True)["copy_rate"]
    holds = versus(start, end) == "clearly below"
    one_long, bi_long = one["by_length"][-1]["bleu"], bi["by_length"][-1]["bleu"]
    rnn = (f"At {words:.0f}-word inputs the one-way GRU + attention carries a phrase's word "
           f"(\"mit einem Hund\": dog) put first {fmt(start, True)} of the time, put last "
           f"{fmt(end, True)} (BiGRU: {fmt(probe_at(bi, 'start', True)['copy_rate'], True)} / "
           f"{fmt(probe_at(bi, 'end', True)['copy_rate'], True)}). "
           + ("The first words fade, as the lecture says. " if holds else
              "Early words are not lost more than late ones here, against the lecture: "
              + ending(one["joined_length_ratio"]["8"]))
           + f"The bidirectional encoder helps: test BLEU {fmt(bi['test_bleu'])} against "
           f"{fmt(one['test_bleu'])} one-way ({versus(bi['test_bleu'], one['test_bleu'])}), over "
           f"81+ words {fmt(bi_long)} against {fmt(one_long)} ({versus(bi_long, one_long)}).")
    longest_t, longest_b = tr["by_length"][-1]["bleu"], bi["by_length"][-1]["bleu"]
    transformer = (f"On inputs of 81+ words the Transformer scores {fmt(longest_t)} BLEU, "
                   f"{versus(longest_t, longest_b)} the BiGRU's {fmt(longest_b)} (on test, "
                   f"{fmt(tr['test_bleu'])} against {fmt(bi['test_bleu'])}); on 8 joined "
                   f"sentences {fmt(tr['joined']['8'])} against {fmt(bi['joined']['8'])}, its "
                   f"translations {fmt(tr['joined_length_ratio']['8'])} of the reference length. "
                   f"It carries the word of a phrase put first in the longest inputs "
                   f"{fmt(probe_at(tr, 'start', True)['copy_rate'], True)} of the time, one put "
                   f"last {fmt(probe_at(tr, 'end', True)['copy_rate'], True)}. "
                   + ("Reaching any word in one step does not keep inputs far longer than those "
                      "it was trained on: it stops early there."
                      if versus(longest_t, longest_b) != "clearly above" else
                      "It keeps long-range information better, as the lecture says."))
    plain = m["rnn-no-attention"]
    attention = (f"Without attention (one fixed vector for the whole source) the GRU scores "
                 f"{fmt(plain['test_bleu'])} test BLEU against {fmt(bi['test_bleu'])} with it, "
                 f"and {fmt(plain['by_length'][-1]['bleu'])} over 81+ words.")
    return {"rnn_dilution": rnn, "transformer_long_range": transformer, "attention": attention}


def ending(ratio: dict) -> str:
    """Why the end of a long input goes missing, from the translations' length."""
    length = f"{fmt(ratio)} of the reference length"
    if ratio["mean"] is not None and ratio["mean"] < 0.9:
        return f"its translations of 8 joined sentences stop early ({length}). "
    return (f"its translations of 8 joined sentences run on ({length}) without reaching the "
            "end's words: the decoder loses its place in a long input. ")


def render_long_range(result: dict) -> str:
    models = result["models"]
    buckets = [row["bucket"] for row in next(iter(models.values()))["by_length"]]
    lines = ["## Long-term dependency: RNNs, direction, attention, the Transformer", "",
             f"Budget: {result['budget']}; greedy search, the model alone (no sentence splitting "
             "or placeholders). BLEU by source words over test and test sentences joined 2, 4 "
             "and 8 at a time:", "",
             "| model | val | test | joined 2 | joined 4 | joined 8 | " + " | ".join(buckets) + " |",
             "|---" * (6 + len(buckets)) + "|"]
    for name, m in models.items():
        lines.append(f"| {name} | {fmt(m['val_bleu'])} | {fmt(m['test_bleu'])} | "
                     + " | ".join(fmt(m["joined"][k]) for k in ("2", "4", "8")) + " | "
                     + " | ".join(fmt(row["bleu"]) for row in m["by_length"]) + " |")
    lines += ["", "![by length](long_range.png)", "",
              f"The probe: a phrase (\"mit einem Hund\", \"mit einer Gitarre\", ...) put at the "
              f"start, the middle or the end of inputs of 1 to 8 joined test sentences "
              f"({result['probe_inputs']} inputs each, each reference without the phrase's "
              "word); the share of translations that carry its word (dog, guitar, ...):", "",
              "| model | words | start | middle | end |", "|---|---|---|---|---|"]
    for name, m in models.items():
        for k in sorted({r["sentences"] for r in m["probe"]}):
            rows = {r["position"]: r for r in m["probe"] if r["sentences"] == k}
            lines.append(f"| {name} | {rows['start']['words']:.0f} | "
                         + " | ".join(fmt(rows[p]["copy_rate"], True)
                                      for p in ("start", "middle", "end")) + " |")
    verdicts = result["verdicts"]
    lines += ["", "![probe](probe.png)", "", f"**Claim 1.** {verdicts['rnn_dilution']} "
              f"{verdicts['attention']}", "", f"**Claim 2.** {verdicts['transformer_long_range']}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- sqrt(d_k)


def scaling_verdict(result: dict) -> str:
    biggest = result["random"][-1]
    parts = [f"On random vectors at d_k {biggest['d_k']} the unscaled softmax puts "
             f"{biggest['raw']['max_probability']:.0%} on its top key (scaled: "
             f"{biggest['scaled']['max_probability']:.0%}) and passes a gradient "
             f"{biggest['scaled']['jacobian_norm'] / max(biggest['raw']['jacobian_norm'], 1e-9):.1f}x "
             "smaller."]
    for d_k, runs in result["training"]["sizes"].items():
        scaled, unscaled = runs["scaled"]["val_bleu"], runs["unscaled"]["val_bleu"]
        parts.append(f"Trained at d_k {d_k}: val BLEU {fmt(unscaled)} unscaled, "
                     f"{versus(unscaled, scaled)} {fmt(scaled)} scaled; the unscaled model's own "
                     f"q . k variance {fmt(runs['unscaled']['variance_raw'])} against "
                     f"{fmt(runs['scaled']['variance_raw'])}.")
    return " ".join(parts)


def render_scaling(result: dict) -> str:
    lines = ["## Why sqrt(d_k)", "",
             "q . k for q, k of unit-variance components (2,000 queries over 32 keys each): "
             "the variance of the raw scores grows with d_k and the softmax saturates; "
             "scaled, it stays put.", "",
             "| d_k | var(q.k) | var(q.k/sqrt(d_k)) | max p raw / scaled | entropy raw / scaled | "
             "softmax Jacobian norm raw / scaled |", "|---|---|---|---|---|---|"]
    for row in result["random"]:
        raw, scaled = row["raw"], row["scaled"]
        lines.append(f"| {row['d_k']} | {row['variance_raw']} | {row['variance_scaled']} | "
                     f"{raw['max_probability']} / {scaled['max_probability']} | "
                     f"{raw['entropy']} / {scaled['entropy']} | "
                     f"{raw['jacobian_norm']} / {scaled['jacobian_norm']} |")
    model = result["model"]
    lines += ["", "![sqrt_dk](sqrt_dk.png)", "",
              f"A trained model's own queries and keys (`{model['path']}`, {model['pair']}, "
              f"encoder self-attention, {model['sentences']} val sentences):", "",
              "| layer | d_k | var(q.k) | var(q.k/sqrt(d_k)) | max p raw / scaled |",
              "|---|---|---|---|---|"]
    for row in model["layers"]:
        lines.append(f"| {row['layer']} | {row['d_k']} | {row['variance_raw']} | "
                     f"{row['variance_scaled']} | {row['raw']['max_probability']} / "
                     f"{row['scaled']['max_probability']} |")
    training = result["training"]
    lines += ["", f"Trained with and without the scaling, same budget ({training['budget']}):",
              "", "| d_k | attention | val BLEU | q.k variance (encoder) | max p (unscaled scores) |",
              "|---|---|---|---|---|"]
    for d_k, runs in training["sizes"].items():
        for label in ("scaled", "unscaled"):
            r = runs[label]
            lines.append(f"| {d_k} | {label} | {fmt(r['val_bleu'])} | {fmt(r['variance_raw'])} | "
                         f"{fmt(r['max_probability_raw'])} |")
    lines += ["", "![training](sqrt_dk_training.png)", "", f"**Claim 3.** {result['verdict']}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- heads


def heads_verdict(result: dict) -> str:
    m = result["models"]
    best = max((h for h in m if h != "1" and m[h]["val_bleu"]["mean"] is not None),
               key=lambda h: m[h]["val_bleu"]["mean"])
    eight = m[max(m, key=int)]
    text = (f"One head: val BLEU {fmt(m['1']['val_bleu'])}; the best of several, {best} heads: "
            f"{fmt(m[best]['val_bleu'])}, {versus(m[best]['val_bleu'], m['1']['val_bleu'])} one. ")
    if "masking" in eight:
        text += (f"With {max(m, key=int)} heads, their attention differs by "
                 f"{fmt(eight['divergence'])} bits (mean pairwise Jensen-Shannon) and "
                 f"{fmt(eight['masking']['removable_share'], True)} of them can be masked alone "
                 f"for less than 0.5 BLEU (most costly: {fmt(eight['masking']['max_cost'])}).")
    return text


def render_heads(result: dict) -> str:
    lines = ["## Heads", "",
             f"Budget: {result['budget']}; d_model 256, so d_k = 256 / heads. Divergence over "
             f"{result['divergence_sentences']} test pairs read teacher-forced; masking: each "
             f"head's output zeroed alone, greedy BLEU over {result['mask_sentences']} test "
             "sentences.", "",
             "| heads | val BLEU | test BLEU | JS divergence (bits) | BLEU unmasked | mean cost | "
             "max cost | removable (< 0.5 BLEU) |", "|---|---|---|---|---|---|---|---|"]
    for h, m in result["models"].items():
        masking = m.get("masking")
        tail = (f"{fmt(masking['bleu'])} | {fmt(masking['mean_cost'])} | "
                f"{fmt(masking['max_cost'])} | {fmt(masking['removable_share'], True)}"
                if masking else "- | - | - | -")
        divergence = fmt(m["divergence"]) if m["divergence"]["mean"] is not None else "-"
        lines.append(f"| {h} | {fmt(m['val_bleu'])} | {fmt(m['test_bleu'])} | {divergence} | {tail} |")
    lines += ["", "![heads](heads.png)", "", f"**Claim 4.** {result['verdict']}"]
    return "\n".join(lines) + "\n"
