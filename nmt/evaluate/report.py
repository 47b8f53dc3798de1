"""``nmt evaluate``: translate a test set with each system, score, compare, and write a report.

The report (``report.md``, ``report.json``, ``by_length.png`` in the ``--out`` folder) holds, per
system: BLEU and chrF with sacreBLEU signatures and 95% bootstrap confidence intervals; paired
significance against a baseline (paired bootstrap resampling and approximate randomization, both
from sacreBLEU); BLEU and chrF by source length; parameters, training time, decoding speed; and
examples side by side. Each report is assembled in a temporary folder and moved into place only
when complete, so a failed run leaves no partial report. A model of several directions gets one
report per direction (``--out/PAIR/``) and ``summary.md`` / ``summary.json`` beside them, a row
per direction and system.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nmt.core.config import DEFAULT_PRECISION, directions
from nmt.core.errors import NmtError
from nmt.core.files import atomic_write_text, staged
from nmt.data.corpus import read_lines, read_parallel, split_file
from nmt.evaluate.scoring import by_length, score_all


@dataclass
class System:
    name: str
    hypotheses: list[str]
    info: dict = field(default_factory=dict)  # parameters, training minutes, speed, ...


def parse_hyp(spec: str) -> tuple[str, Path]:
    if "=" not in spec:
        raise NmtError(f"--hyp {spec!r}: expected NAME=FILE")
    name, path = spec.split("=", 1)
    return name.strip(), Path(path)


def translate_with(translator, model_dir: Path, sources: list[str], beam_size: int,
                   log) -> System:
    start = time.perf_counter()
    hypotheses = translator.translate(sources, beam_size=beam_size)
    seconds = time.perf_counter() - start
    training = {}
    metrics_path = model_dir / "metrics.json"
    if metrics_path.is_file():
        training = json.loads(metrics_path.read_text()).get("training", {})
    info = {"model": str(model_dir), "arch": translator.config.model.arch,
            "parameters": translator.parameters,
            "training_minutes": training.get("training_minutes"),
            "beam_size": beam_size, "precision": translator.precision,
            "decode_seconds": round(seconds, 1),
            "sentences_per_second": round(len(sources) / seconds, 1)}
    log(f"{model_dir.name}: {len(sources)} sentences in {seconds:.1f} s")
    return System(model_dir.name, hypotheses, info)


def significance(systems: list[System], baseline: str, references: list[str]) -> dict:
    """p-values of every system against the baseline, by paired bootstrap and by approximate
    randomization (sacreBLEU's implementations), with bootstrap 95% confidence intervals."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    ordered = [s for s in systems if s.name == baseline] + [s for s in systems if s.name != baseline]
    named = [(s.name, s.hypotheses) for s in ordered]
    out: dict = {s.name: {} for s in ordered}
    for test_type in ("bs", "ar"):
        metrics = {"BLEU": BLEU(), "chrF": CHRF()}
        signatures, scores = PairedTest(named, metrics, [references], test_type=test_type,
                                        n_samples=1000 if test_type == "bs" else 2000,
                                        n_ar_confidence=-1)()
        for metric_name, results in scores.items():
            if metric_name == "System":
                continue
            key = "bleu" if metric_name.startswith("BLEU") else "chrf"
            for system, result in zip(ordered, results):
                entry = out[system.name].setdefault(key, {})
                if test_type == "bs":
                    entry["mean"] = round(float(result.mean), 2)
                    entry["ci95"] = round(float(result.ci), 2)
                    entry["signature_bs"] = str(signatures[metric_name])
                if result.p_value is not None:
                    entry[f"p_{test_type}"] = round(float(result.p_value), 4)
    return out


def plot_by_length(rows: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, buckets in rows.items():
        labels = [b["bucket"] for b in buckets]
        for ax, metric in zip(axes, ("bleu", "chrf")):
            ax.plot(labels, [b[metric] if b[metric] is not None else float("nan")
                             for b in buckets], "o-", label=name)
    for ax, title in zip(axes, ("BLEU", "chrF")):
        ax.set(xlabel="source length (words)", ylabel=title, title=f"{title} by source length")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)


def fmt(value, digits=2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_markdown(report: dict) -> str:
    base = report["baseline"]
    first = next(iter(report["systems"].values()))
    lines = [f"# Evaluation on {report['split']} ({report['pair']}, {report['sentences']} sentences)",
             "", f"Baseline for significance: **{base}**. 95% confidence intervals from paired "
             "bootstrap resampling (1000 samples); p-values from paired bootstrap (bs) and "
             "approximate randomization (ar, 2000 trials). Models decode with beam "
             f"{first['info'].get('beam_size', '–')} and {first['info'].get('precision', '–')} "
             "weights (`--quantize`).", "",
             "| system | BLEU | 95% CI | p (bs) | p (ar) | chrF | 95% CI | p (bs) | p (ar) | "
             "BLEU lc | parameters | training min | sentences/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["systems"].items():
        b, c, info = s["significance"]["bleu"], s["significance"]["chrf"], s["info"]
        params = f"{info['parameters']:,}" if info.get("parameters") else "–"
        lines.append(
            f"| {name} | {s['bleu']:.2f} | ±{b['ci95']:.2f} | {fmt(b.get('p_bs'), 4)} | "
            f"{fmt(b.get('p_ar'), 4)} | {s['chrf']:.2f} | ±{c['ci95']:.2f} | "
            f"{fmt(c.get('p_bs'), 4)} | {fmt(c.get('p_ar'), 4)} | {s['bleu_lc']:.2f} | {params} | "
            f"{fmt(info.get('training_minutes'), 1)} | {fmt(info.get('sentences_per_second'), 1)} |")
    lines += ["", "Signatures:", "", f"- BLEU: `{first['bleu_signature']}`",
              f"- BLEU lowercased: `{first['bleu_lc_signature']}`",
              f"- chrF: `{first['chrf_signature']}`", "",
              "## Quality by source length", "", "![by length](by_length.png)", ""]
    names = list(report["systems"])
    lines.append("| source words | sentences | " + " | ".join(f"{n} BLEU" for n in names) + " | "
                 + " | ".join(f"{n} chrF" for n in names) + " |")
    lines.append("|---" * (2 + 2 * len(names)) + "|")
    buckets = [report["systems"][n]["by_length"] for n in names]
    for i, row in enumerate(buckets[0]):
        lines.append(f"| {row['bucket']} | {row['sentences']} | "
                     + " | ".join(fmt(b[i]["bleu"]) for b in buckets) + " | "
                     + " | ".join(fmt(b[i]["chrf"]) for b in buckets) + " |")
    if "robustness" in report:
        lines += [""] + render_robustness(report["robustness"], report["baseline"])
    lines += ["", "## Examples", ""]
    for example in report["examples"]:
        lines.append(f"**{example['why']}** — source: {example['source']}")
        lines.append("")
        lines.append(f"- reference: {example['reference']}")
        for name in names:
            lines.append(f"- {name}: {example['hypotheses'][name]}")
        lines.append("")
    return "\n".join(lines)


def robustness_of(translators, systems: list[System], sources, references, pair: str,
                  beam_size: int, log) -> dict:
    """nmt/evaluate/robustness.py's sets from this split, every model on them (the plain set is the
    split itself, already translated), lengths by the first model's vocabulary (so all systems
    share the buckets)."""
    from nmt.evaluate.robustness import build_sets, evaluate_robustness, source_lengths

    src_lang, tgt_lang = pair.split("-")
    sets = build_sets(sources, references, src_lang, tgt_lang)
    lengths = source_lengths(translators[0].tokenizer, sets)
    return {t.name: evaluate_robustness(t, sets, beam_size, lengths, log,
                                        known={"plain": s.hypotheses})
            for t, s in zip(translators, systems)}


def plot_robustness(robustness: dict, out: Path) -> None:
    """BLEU and length ratio by source subwords, every model on one plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, result in robustness.items():
        rows = [r for r in result["by_source_length"] if r["pairs"]]
        labels = [r["bucket"] for r in rows]
        axes[0].plot(labels, [r["bleu"] for r in rows], "o-", label=name)
        axes[1].plot(labels, [r["length_ratio"] for r in rows], "o-", label=name)
    axes[0].set(xlabel="source length (subwords)", ylabel="BLEU",
                title="BLEU by source length (plain + joined sentences)")
    axes[1].set(xlabel="source length (subwords)", ylabel="hypothesis / reference length",
                title="length ratio by source length")
    axes[1].axhline(1.0, color="grey", lw=0.8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)


def render_robustness(robustness: dict, baseline: str) -> list[str]:
    names = list(robustness)
    lines = ["## Robustness", "",
             "Sets built from this split by `nmt/evaluate/robustness.py`: *long-k* joins k consecutive "
             "sentences into one (\", und \" / \", and \"), beside the same sentences translated one "
             "by one; *upper* / *lower* change the source's casing (BLEU lc: lowercased BLEU; "
             "caps: share of outputs in capitals); *pass* puts a token that must be copied "
             "(number, date, price, code, link, e-mail, emoji, name) in source and reference; "
             "*upper-pass* does so in a source in capitals (all but names); *acronym* puts an "
             "acronym (EU, NATO, IKEA, ...) in source and reference; *upper-one* puts one word "
             "of the source in capitals, as typed for emphasis.", "",
             "| set | pairs | " + " | ".join(
                 f"{n} BLEU | {n} BLEU lc | {n} length ratio | {n} one by one | {n} copied / caps"
                 for n in names) + " |",
             "|---|---" + "|---" * (5 * len(names)) + "|"]
    for i, row in enumerate(robustness[names[0]]["sets"]):
        cells = []
        for n in names:
            r = robustness[n]["sets"][i]
            extra = fmt(r.get("copied"), 3) if "copied" in r else fmt(r.get("all_caps"), 3)
            cells.append(f"{fmt(r['bleu'])} | {fmt(r['bleu_lc'])} | {fmt(r['length_ratio'], 3)} | "
                         f"{fmt(r.get('one_by_one_bleu'))} | {extra}")
        lines.append(f"| {row['set']} | {row['pairs']} | " + " | ".join(cells) + " |")
    def by_kind(name: str) -> dict:
        return next(r for r in robustness[name]["sets"] if r["set"] == "pass")["copied_by_kind"]

    lines += ["", "Pass-through tokens copied exactly, by kind:", "",
              "| system | " + " | ".join(by_kind(names[0])) + " |",
              "|---" * (1 + len(by_kind(names[0]))) + "|"]
    for n in names:
        kinds = by_kind(n)
        lines.append(f"| {n} | " + " | ".join(fmt(v, 3) for v in kinds.values()) + " |")
    lines += ["", "### By source length (plain and joined sets pooled)", "",
              "![robustness](robustness.png)", "",
              "No BP: BLEU without its brevity penalty (the n-gram precisions alone), which tells "
              "a shorter translation from a worse one.", "",
              "| source subwords | pairs | " + " | ".join(
                  f"{n} BLEU | {n} length ratio | {n} no BP" for n in names) + " |",
              "|---|---" + "|---" * (3 * len(names)) + "|"]
    for i, row in enumerate(robustness[names[0]]["by_source_length"]):
        cells = []
        for n in names:
            r = robustness[n]["by_source_length"][i]
            cells.append(f"{fmt(r['bleu'])} | {fmt(r['length_ratio'], 3)} | "
                         f"{fmt(r['bleu_without_bp'])}")
        lines.append(f"| {row['bucket']} | {row['pairs']} | " + " | ".join(cells) + " |")
    if baseline in robustness:
        lines += [""] + explain_baseline_leads(robustness, baseline)
    return lines + [""]


def explain_baseline_leads(robustness: dict, baseline: str) -> list[str]:
    """A line per system for the length buckets where the baseline's BLEU is higher, saying
    whether the system's n-gram precision is lower there too (a worse translation) or not (only
    shorter: the brevity penalty makes the difference), with both differences."""
    lines = []
    base = robustness[baseline]["by_source_length"]
    for name, result in robustness.items():
        if name == baseline:
            continue
        behind = [(r["bucket"], r["bleu"] - b["bleu"], r["bleu_without_bp"] - b["bleu_without_bp"])
                  for r, b in zip(result["by_source_length"], base)
                  if r["pairs"] and r["bleu"] < b["bleu"]]
        if not behind:
            lines.append(f"- {name} is at or above {baseline} in every length bucket.")
            continue
        shorter = [row for row in behind if row[2] >= 0]
        worse = [row for row in behind if row[2] < 0]
        text = f"- {name} is below {baseline} in {len(behind)} length bucket(s)"
        if shorter:
            text += (f"; in {_bucket_gaps(shorter)} its n-gram precision is as high or higher and "
                     "only its shorter translations (brevity penalty) put it behind")
        if worse:
            text += f"; in {_bucket_gaps(worse)} its n-gram precision is lower too"
        lines.append(text + ".")
    return lines


def _bucket_gaps(rows: list[tuple[str, float, float]]) -> str:
    return ", ".join(f"{bucket} (BLEU {bleu:+.2f}, without BP {precision:+.2f})"
                     for bucket, bleu, precision in rows)


@dataclass(frozen=True)
class Evaluation:
    """What ``nmt evaluate`` is asked: systems (model directories, and ``NAME=FILE`` hypothesis
    files), the direction, the split and how to decode."""

    model: tuple[str, ...] = ()
    hyp: tuple[str, ...] = ()
    out: str = "reports/latest"
    pair: str | None = None
    split: str = "test_2016_flickr"
    data: str = "data/multi30k"
    beam: int = 4
    quantize: str = DEFAULT_PRECISION
    baseline: str | None = None
    robustness: bool = True
    replace: bool = False  # write over an existing report folder (--force)


def evaluate(models=(), out: str | Path = "reports/latest", log=None, **options) -> Path:
    """Evaluate model directories (and ``hyp=["NAME=FILE"]`` systems) from Python, as
    ``nmt evaluate`` does; ``options``: the other fields of ``Evaluation``. The report folder."""
    options["hyp"] = tuple(options.get("hyp", ()))
    return run_evaluation(Evaluation(model=tuple(str(m) for m in models), out=str(out), **options),
                          log)


def run_evaluation(args: Evaluation, log=None) -> Path:
    """Every direction asked for (``pair``; by default all of the first model's): one report
    each, in ``out`` itself for one direction, else in ``out/PAIR/``."""
    log = log or (lambda *a: print(*a, file=sys.stderr, flush=True))
    if not args.model and not args.hyp:
        raise NmtError("give at least one --model DIR or --hyp NAME=FILE")
    from nmt.models.directory import read_model_config

    configs = [read_model_config(Path(m)) for m in args.model]  # fail early on a bad directory
    pairs = [args.pair] if args.pair else \
        [f"{s}-{t}" for s, t in directions(configs[0].data)] if configs else ["de-en"]
    for pair in pairs:
        for model_dir, config in zip(args.model, configs):
            served = [f"{s}-{t}" for s, t in directions(config.data)]
            if pair not in served:
                raise NmtError(f"{model_dir}: translates {', '.join(served)}, not {pair}")
    if len(pairs) > 1 and args.hyp:
        raise NmtError("--hyp files hold one direction: give it with --pair")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.replace:
        raise NmtError(f"{out}: already exists; the report would replace it and all it holds "
                       "(--force to do so, or another --out)")
    reports = {}
    for pair in pairs:
        if len(pairs) > 1:
            log(f"evaluating {pair}")
        reports[pair] = evaluate_pair(args, pair, out / pair if len(pairs) > 1 else out, log)
    if len(pairs) > 1:
        summary = summarize(reports)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        atomic_write_text(out / "summary.md", render_summary(summary, args.split) + "\n")
        log(f"wrote {out}/summary.md")
    return out


def summarize(reports: dict[str, dict]) -> list[dict]:
    """One row per direction and system: the figures of its report that a reader compares
    across directions (quality, and what people type)."""
    rows = []
    for pair, report in reports.items():
        for name, s in report["systems"].items():
            row = {"pair": pair, "system": name, "bleu": s["bleu"], "chrf": s["chrf"],
                   "bleu_lc": s["bleu_lc"]}
            sets = {r["set"]: r for r in report.get("robustness", {}).get(name, {}).get("sets", [])}
            if sets:
                row.update(long3_bleu=sets["long-3"]["bleu"],
                           long3_one_by_one=sets["long-3"]["one_by_one_bleu"],
                           long3_length_ratio=sets["long-3"]["length_ratio"],
                           upper_bleu_lc=sets["upper"]["bleu_lc"],
                           lower_bleu_lc=sets["lower"]["bleu_lc"],
                           copied=sets["pass"]["copied"],
                           names_copied=sets["pass"]["copied_by_kind"].get("name"))
            rows.append(row)
    return rows


def render_summary(rows: list[dict], split: str) -> str:
    lines = [f"# Every direction on {split}", "",
             "Each direction's own report is in its folder (`PAIR/report.md`). BLEU lc: "
             "lowercased; 3 joined: three sentences joined into one, BLEU / the same sentences "
             "translated one by one / length ratio; UPPER, lower: lowercased BLEU of the source "
             "in capitals / in lowercase; copied: pass-through tokens copied exactly (names).", "",
             "| direction | system | BLEU | chrF | BLEU lc | 3 joined | UPPER | lower | copied |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        joined = (f"{fmt(r['long3_bleu'])} / {fmt(r['long3_one_by_one'])} / "
                  f"{fmt(r['long3_length_ratio'])}") if "long3_bleu" in r else "–"
        copied = (f"{r['copied']:.1%} ({fmt(r['names_copied'] and 100 * r['names_copied'], 0)}%)"
                  if "copied" in r else "–")
        lines.append(f"| {r['pair']} | {r['system']} | {r['bleu']:.2f} | {r['chrf']:.2f} | "
                     f"{r['bleu_lc']:.2f} | {joined} | {fmt(r.get('upper_bleu_lc'))} | "
                     f"{fmt(r.get('lower_bleu_lc'))} | {copied} |")
    return "\n".join(lines)


def evaluate_pair(args: Evaluation, pair: str, out: Path, log) -> dict:
    """One direction's report, written to ``out`` and returned."""
    src_lang, tgt_lang = pair.split("-")
    sources, references = read_parallel(split_file(args.data, args.split, src_lang),
                                        split_file(args.data, args.split, tgt_lang))
    hyp_systems = read_hyp_systems(args.hyp, len(references), args.split)
    names = [Path(m).name for m in args.model] + [s.name for s in hyp_systems]
    if len(set(names)) != len(names):  # before any model runs
        raise NmtError(f"system names must differ: {', '.join(names)} (name a model by its "
                       "directory, a file by --hyp NAME=FILE)")
    from nmt.decode.translator import Translator

    translators = [Translator.load(m, quantize=args.quantize, pair=(src_lang, tgt_lang))
                   for m in args.model]
    systems = [translate_with(t, Path(m), sources, args.beam, log)
               for t, m in zip(translators, args.model)] + hyp_systems
    baseline = args.baseline or next((s.name for s in systems if s.info.get("arch") == "rnn"),
                                     systems[0].name)
    if baseline not in names:
        raise NmtError(f"--baseline {baseline!r} is not one of: {', '.join(names)}")
    log("scoring and testing significance")
    tests = significance(systems, baseline, references)
    report = {"split": args.split, "pair": pair, "sentences": len(references),
              "data": str(args.data), "baseline": baseline, "systems": {}}
    for system in systems:
        report["systems"][system.name] = {
            **score_all(system.hypotheses, references), "significance": tests[system.name],
            "by_length": by_length(sources, system.hypotheses, references), "info": system.info}
    if translators and args.robustness:
        report["robustness"] = robustness_of(translators, systems, sources, references, pair,
                                             args.beam, log)
    longest = sorted(range(len(sources)), key=lambda i: -len(sources[i].split()))[:3]
    picks = [(i, "one of the longest") for i in longest] + [(i, "sample") for i in (0, 1, 2)]
    report["examples"] = [{"why": why, "source": sources[i], "reference": references[i],
                           "hypotheses": {s.name: s.hypotheses[i] for s in systems}}
                          for i, why in picks]
    out = write_report(report, systems, out)
    for name, s in report["systems"].items():
        sig = s["significance"]
        log(f"{name}: BLEU {s['bleu']:.2f} ±{sig['bleu']['ci95']:.2f}, chrF {s['chrf']:.2f}"
            + (f", p(bs) {sig['bleu']['p_bs']:.4f}" if "p_bs" in sig["bleu"] else " (baseline)"))
    log(f"wrote {out}/report.md")
    return report


def read_hyp_systems(specs: list[str], references: int, split: str) -> list[System]:
    """Other systems' hypothesis files, checked before any model runs."""
    systems = []
    for name, path in (parse_hyp(spec) for spec in specs):
        lines = read_lines(path)
        if not lines or not any(line.strip() for line in lines):
            raise NmtError(f"{path}: empty hypothesis file")
        if len(lines) != references:
            raise NmtError(f"{path}: {len(lines)} lines, but {split} has {references} references")
        systems.append(System(name, lines, {"file": str(path)}))
    return systems


def write_report(report: dict, systems: list[System], out: Path) -> Path:
    """report.json, report.md, the plots and each system's hypotheses, all or nothing."""
    with staged(out) as staging:
        (staging / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        (staging / "report.md").write_text(render_markdown(report) + "\n", encoding="utf-8")
        plot_by_length({n: s["by_length"] for n, s in report["systems"].items()},
                       staging / "by_length.png")
        if "robustness" in report:
            plot_robustness(report["robustness"], staging / "robustness.png")
        for system in systems:
            (staging / f"{system.name}.hyp.txt").write_text(
                "".join(h + "\n" for h in system.hypotheses), encoding="utf-8")
    return out

