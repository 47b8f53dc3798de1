"""sacreBLEU scores with their signatures, paired significance, and quality by source length."""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def bleu(hypotheses: list[str], references: list[str], lowercase: bool = False):
    metric = BLEU(lowercase=lowercase)
    return metric.corpus_score(hypotheses, [references]), str(metric.get_signature())


def chrf(hypotheses: list[str], references: list[str]):
    metric = CHRF()
    return metric.corpus_score(hypotheses, [references]), str(metric.get_signature())


def score_all(hypotheses: list[str], references: list[str]) -> dict:
    """BLEU (cased and lowercased) and chrF, each with its sacreBLEU signature."""
    cased, cased_sig = bleu(hypotheses, references)
    lower, lower_sig = bleu(hypotheses, references, lowercase=True)
    chr_score, chr_sig = chrf(hypotheses, references)
    return {
        "bleu": round(cased.score, 2), "bleu_signature": cased_sig,
        "bleu_lc": round(lower.score, 2), "bleu_lc_signature": lower_sig,
        "chrf": round(chr_score.score, 2), "chrf_signature": chr_sig,
        "sentences": len(hypotheses),
    }


LENGTH_BUCKETS = ((1, 8), (9, 12), (13, 16), (17, 20), (21, 10_000))


def bucket_name(low: int, high: int) -> str:
    return f"{low}+" if high >= 10_000 else f"{low}-{high}"


def by_length(sources: list[str], hypotheses: list[str], references: list[str],
              buckets=LENGTH_BUCKETS) -> list[dict]:
    """BLEU and chrF of the sentences whose source has a number of words in each bucket."""
    rows = []
    for low, high in buckets:
        pick = [i for i, s in enumerate(sources) if low <= len(s.split()) <= high]
        if not pick:
            rows.append({"bucket": bucket_name(low, high), "sentences": 0, "bleu": None,
                         "chrf": None})
            continue
        hyp = [hypotheses[i] for i in pick]
        ref = [references[i] for i in pick]
        rows.append({"bucket": bucket_name(low, high), "sentences": len(pick),
                     "bleu": round(bleu(hyp, ref)[0].score, 2),
                     "chrf": round(chrf(hyp, ref)[0].score, 2)})
    return rows
