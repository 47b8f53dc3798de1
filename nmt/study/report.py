"""``nmt study``: run an experiment, write its JSON, figure and section of the study's page."""

from __future__ import annotations

import json
from pathlib import Path

from nmt.core.files import atomic_write_text
from nmt.data.batching import encode_source, pad
from nmt.data.corpus import read_lines, split_file
from nmt.data.tokenizer import PAD_ID
from nmt.study.sqrt_dk import model_scores, random_vectors


def study_sqrt_dk(out: Path, model_dir: Path, data: str = "data/multi30k", sentences: int = 200,
                  log=print) -> dict:
    """The sqrt(d_k) experiment on random vectors and on ``model_dir``'s encoder (fp32), over
    the first ``sentences`` val sentences; ``out``/sqrt_dk.json, .png and the page's section."""
    from nmt.decode.translator import Translator

    out.mkdir(parents=True, exist_ok=True)
    log("random vectors: the variance of q . k and the softmax over d_k 16-512")
    random_rows = random_vectors()
    translator = Translator.load(model_dir, quantize="none")
    texts = read_lines(split_file(data, "val", translator.src_lang))[:sentences]
    src = pad([encode_source(ids) for ids in translator.encode_sources(texts)])
    layers = model_scores(translator.model, src, src != PAD_ID)
    result = {"experiment": "sqrt_dk", "random": random_rows,
              "model": {"path": str(model_dir), "pair": f"{translator.src_lang}-{translator.tgt_lang}",
                        "sentences": len(texts), "layers": layers}}
    atomic_write_text(out / "sqrt_dk.json", json.dumps(result, indent=1) + "\n")
    plot(random_rows, out / "sqrt_dk.png")
    write_section(out / "README.md", "sqrt_dk", render(result))
    log(f"wrote {out}/sqrt_dk.json, sqrt_dk.png and README.md")
    return result


def render(result: dict) -> str:
    lines = ["## Why sqrt(d_k)", "",
             "q . k for q, k of unit-variance components (`nmt study sqrt-dk`, "
             f"{len(result['random'])} head sizes, 2,000 queries over 32 keys each): the variance "
             "of the raw scores grows with d_k and the softmax saturates; scaled, it stays put.", "",
             "| d_k | var(q.k) | var(q.k/sqrt(d_k)) | max p raw / scaled | entropy raw / scaled | "
             "softmax Jacobian norm raw / scaled |", "|---|---|---|---|---|---|"]
    for row in result["random"]:
        raw, scaled = row["raw"], row["scaled"]
        lines.append(f"| {row['d_k']} | {row['variance_raw']} | {row['variance_scaled']} | "
                     f"{raw['max_probability']} / {scaled['max_probability']} | "
                     f"{raw['entropy']} / {scaled['entropy']} | "
                     f"{raw['jacobian_norm']} / {scaled['jacobian_norm']} |")
    model = result["model"]
    lines += ["", f"The trained model's own queries and keys (`{model['path']}`, {model['pair']}, "
                  f"encoder self-attention, {model['sentences']} val sentences):", "",
              "| layer | d_k | var(q.k) | var(q.k/sqrt(d_k)) | max p raw / scaled |", "|---|---|---|---|---|"]
    for row in model["layers"]:
        lines.append(f"| {row['layer']} | {row['d_k']} | {row['variance_raw']} | "
                     f"{row['variance_scaled']} | {row['raw']['max_probability']} / "
                     f"{row['scaled']['max_probability']} |")
    return "\n".join(lines) + "\n\n![sqrt_dk](sqrt_dk.png)\n"


def write_section(page: Path, name: str, text: str) -> None:
    """The page with ``name``'s section replaced (or added); other experiments' stay."""
    start, end = f"<!-- study:{name} -->", f"<!-- /study:{name} -->"
    current = page.read_text(encoding="utf-8") if page.is_file() else \
        "# The lecture's claims, measured\n\nWritten by `nmt study`; each section by one experiment.\n"
    block = f"{start}\n{text}{end}\n"
    if start in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    atomic_write_text(page, current)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d_ks = [row["d_k"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.loglog(d_ks, [row["variance_raw"] for row in rows], "o-", label="q . k")
    left.loglog(d_ks, [row["variance_scaled"] for row in rows], "o-", label="q . k / sqrt(d_k)")
    left.set(xlabel="d_k", ylabel="variance of the scores", title="Scores")
    left.legend()
    for key, label in (("raw", "unscaled"), ("scaled", "scaled")):
        right.semilogx(d_ks, [row[key]["max_probability"] for row in rows], "o-",
                       label=f"largest probability, {label}")
        right.semilogx(d_ks, [row[key]["jacobian_norm"] for row in rows], "s--",
                       label=f"Jacobian norm, {label}")
    right.set(xlabel="d_k", title="Softmax over 32 keys")
    right.legend(fontsize=7)
    for axes in (left, right):
        axes.minorticks_off()
        axes.set_xticks(d_ks, [str(d) for d in d_ks])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

