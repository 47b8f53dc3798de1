"""Generated documentation: the README's tables from reports/*.json, docs/CONFIG.md from the
config rules. ``python scripts/docs.py`` writes them; ``--check`` only says whether they are
current (tests/test_docs.py runs it), so the README, the reports and the config cannot disagree.

A generated block in a Markdown file sits between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->``; everything outside the markers is written by hand.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nmt.core.config import RULES, SECTIONS  # noqa: E402

LANGUAGES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}


def _read(path: str) -> dict | list:
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def results_table() -> str:
    """Test BLEU and chrF of every shipped model in every direction it serves, with the
    robustness figures a user meets first: input in capitals, pass-through spans kept."""
    rows = []
    for row in _read("reports/multi30k/summary.json"):
        rows.append([row["system"], row["pair"], f"{row['bleu']:.2f}", f"{row['chrf']:.2f}",
                     f"{row['upper_bleu_lc']:.2f}", f"{row['copied']:.1%}"])
    de_en = _read("reports/de-en/report.json")
    for name, system in de_en["systems"].items():
        if name == "transformer-multi30k":
            continue  # in the summary above
        sets = {s["set"]: s for s in de_en["robustness"][name]["sets"]}
        rows.append([name, de_en["pair"], f"{system['bleu']:.2f}", f"{system['chrf']:.2f}",
                     f"{sets['upper']['bleu_lc']:.2f}", f"{sets['pass']['copied']:.1%}"])
    return _table(["model", "direction", "BLEU", "chrF", "BLEU, input in capitals (lc)",
                   "spans copied"], rows)


def speed_table() -> str:
    """Sentences per second against CTranslate2 on the same weights, int8, test_2016_flickr."""
    report = _read("reports/decode_peer_ctranslate2.json")
    runs = {(r["engine"], r["beam"], r["decoders"], r["threads_each"]): r
            for r in report["runs"] if r["precision"] == "int8"}
    rows = []
    for decoders, threads in ((1, 2), (2, 1)):
        for beam in (1, 4):
            ours = runs[("nmt", beam, decoders, threads)]
            peer = runs[("ctranslate2", beam, decoders, threads)]
            rows.append([f"{decoders} x {threads} threads", beam, f"{ours['sentences_per_s']:,.0f}",
                         f"{peer['sentences_per_s']:,.0f}",
                         f"{ours['sentences_per_s'] / peer['sentences_per_s']:.2f}x",
                         f"{ours['bleu']:.2f} / {peer['bleu']:.2f}"])
    for threads in (1, 2):
        ours = report[f"lone_sentence_greedy_nmt_int8_{threads}_threads"]["p50_ms"]
        peer = report[f"lone_sentence_greedy_ctranslate2_int8_{threads}_threads"]["p50_ms"]
        rows.append([f"one sentence, {threads} thread{'s' * (threads > 1)}", 1, f"{ours} ms",
                     f"{peer} ms", f"{peer / ours:.2f}x", ""])
    return _table(["layout", "beam", "nmt", "CTranslate2", "nmt / CT2", "BLEU nmt / CT2"], rows)


def systems_table() -> str:
    """The de-en systems side by side with confidence intervals and paired significance."""
    report = _read("reports/de-en/report.json")
    rows = []
    for name, system in report["systems"].items():
        sig, info = system["significance"], system["info"]
        p = (f"{sig['bleu']['p_bs']} / {sig['bleu']['p_ar']}" if "p_bs" in sig["bleu"]
             else "(baseline)")
        rows.append([name, f"{system['bleu']:.2f}", f"±{sig['bleu']['ci95']:.2f}", p,
                     f"{system['chrf']:.2f}", f"{info['parameters'] / 1e6:.1f} M",
                     f"{info['training_minutes']:.0f} min"])
    return _table(["system", "BLEU", "95% CI", "p vs baseline (bootstrap / approx. rand.)",
                   "chrF", "parameters", "training"], rows)


# What each robustness set reports: BLEU, or lowercased BLEU where the output is in capitals.
ROBUSTNESS_CELLS = {"upper": "bleu_lc", "upper-word": "bleu_lc", "lower": "bleu_lc",
                    "upper-pass": "bleu_lc"}


def robustness_table() -> str:
    """Every robustness set of the de-en report, each system's figure and what it copied."""
    report = _read("reports/de-en/report.json")
    systems = list(report["robustness"])
    sets = {name: {s["set"]: s for s in report["robustness"][name]["sets"]} for name in systems}
    rows = []
    for set_name, first in sets[systems[0]].items():
        key = ROBUSTNESS_CELLS.get(set_name, "bleu")
        cells = []
        for name in systems:
            row = sets[name][set_name]
            cell = f"{row[key]:.2f}"
            if "copied" in row:
                cell += f" ({row['copied']:.1%})"
            elif "one_by_one_bleu" in row:
                cell += f" / {row['one_by_one_bleu']:.2f}"
            cells.append(cell)
        what = "BLEU lc" if key == "bleu_lc" else "BLEU"
        rows.append([f"{set_name} ({first['pairs']})", what, *cells])
    return _table(["set (pairs)", "figure", *systems], rows)


def directions_table() -> str:
    """The multilingual model in every direction: quality and what people type."""
    rows = [[row["pair"], f"{row['bleu']:.2f}", f"{row['chrf']:.2f}",
             f"{row['long3_bleu']:.2f} / {row['long3_one_by_one']:.2f}",
             f"{row['upper_bleu_lc']:.2f} / {row['lower_bleu_lc']:.2f}",
             f"{row['copied']:.1%} ({row['names_copied']:.0%})"]
            for row in _read("reports/multi30k/summary.json")]
    return _table(["direction", "BLEU", "chrF", "3 joined / one by one", "CAPITALS / lower (BLEU lc)",
                   "spans copied (names)"], rows)


def peer_table() -> str:
    """Every layout, beam and precision of the CTranslate2 comparison, with each engine's batch."""
    report = _read("reports/decode_peer_ctranslate2.json")
    runs = {(r["engine"], r["precision"], r["beam"], r["decoders"], r["threads_each"]): r
            for r in report["runs"]}
    rows = []
    for decoders, threads in ((1, 2), (2, 1)):
        for beam in (1, 4):
            row = [f"{'greedy' if beam == 1 else f'beam {beam}'}, {decoders} x {threads} threads"]
            for precision in ("int8", "fp32"):
                for engine in ("nmt", "ctranslate2"):
                    run = runs.get((engine, precision, beam, decoders, threads))
                    row.append(f"{run['sentences_per_s']:,.0f} ({run['batch']})" if run else "")
            rows.append(row)
    lone = ["lone sentence, greedy, p50 ms (1 / 2 threads)"]
    for precision in ("int8", "fp32"):
        for engine in ("nmt", "ctranslate2"):
            lone.append(" / ".join(str(report[f"lone_sentence_greedy_{engine}_{precision}_{t}_threads"]
                                       ["p50_ms"]) for t in (1, 2)))
    rows.append(lone)
    return _table(["sentences/s (batch)", "nmt int8", "CTranslate2 int8", "nmt fp32",
                   "CTranslate2 fp32"], rows)


def _statuses(statuses) -> str:
    """A list of statuses as it is; counts by status as "429 x 1,234"."""
    if isinstance(statuses, dict):
        return ", ".join(f"{status} x {count:,}" for status, count in sorted(statuses.items()))
    return ", ".join(str(s) for s in statuses)


def faults_table() -> str:
    """The service under abuse: normal requests' fate in every phase of bench/faults.py."""
    report = _read("reports/faults.json")
    rows = [[name, phase["normal_requests"], phase["normal_failures"],
             f"{phase['latency_ms']['p50']:.0f} / {phase['latency_ms']['p95']:.0f}",
             f"{phase['health_ms']['p99']:.0f}" if "health_ms" in phase else "",
             _statuses(phase.get("statuses", []))]
            for name, phase in report["phases"].items()]
    rows.append(["server 500s", "", report["server_500s"], "", "", ""])
    return _table(["phase", "normal requests", "failed", "p50 / p95 ms", "/health p99 ms",
                   "abusive requests got"], rows)


def scale_table() -> str:
    """Corpora of any size: bench/scale.py's preparation, first step, memory and reads."""
    report = _read("reports/scale.json")
    rows = []
    for size, row in report["sizes"].items():
        plain, prep, hf = row["prepare_plain"], row["prepare"], row["datasets_map"]
        one, many = row["train"], row["torchrun"]
        rows.append([f"{int(size):,}", f"{plain['seconds']:.0f} ({plain['shard_seconds']:.0f})",
                     f"{hf['seconds']:.0f}", f"{hf['seconds'] / plain['shard_seconds']:.2f}x",
                     f"{prep['seconds']:.0f} ({prep['shard_seconds']:.0f})",
                     f"{one['first_step_seconds']:.1f}", f"{one['peak_rss_mb_per_process'][0]:,}",
                     " / ".join(f"{mb:,}" for mb in many["peak_rss_mb_per_process"]),
                     " / ".join(f"{b / 1e6:.2f}" for b in many["token_bytes_read_per_rank"]),
                     f"{one['tokens_per_s']:,}"])
    return _table(["pairs", "nmt prepare s (its shards)", "datasets map s",
                   "map / shards", "recipe prepare s (shards)", "first step s", "train RSS MB",
                   "torchrun x2 RSS MB", "MB of ids read per rank", "tokens/s"], rows)


def study_claims() -> str:
    """Each claim of the lecture: its figure and the verdict ``nmt study`` computed."""
    long_range, sqrt_dk = _read("reports/study/long_range.json"), _read("reports/study/sqrt_dk.json")
    heads = _read("reports/study/heads.json")
    v = long_range["verdicts"]
    claims = [
        ("1. An RNN encoder dilutes early words; a bidirectional one helps", "probe.png",
         f"{v['rnn_dilution']} {v['attention']}"),
        ("2. Self-attention keeps long-range information", "long_range.png",
         v["transformer_long_range"]),
        ("3. Without 1/sqrt(d_k) the softmax saturates", "sqrt_dk_training.png", sqrt_dk["verdict"]),
        ("4. Several heads beat one", "heads.png", heads["verdict"]),
    ]
    out = [f"Budget of every model: {long_range['budget']}.", ""]
    for title, figure, verdict in claims:
        out += [f"### {title}", "", f"![{figure}](../reports/study/{figure})", "", verdict, ""]
    return "\n".join(out).rstrip("\n")


def alignment_table() -> str:
    """Per gold set and model: the served method, the best of each kind of method (each with its
    best rule), eflomal; Kendall's tau, tags, and the attention ablations."""
    out = []
    for path in sorted((ROOT / "reports/alignment").glob("*.json")):
        report = _read(str(path.relative_to(ROOT)))
        rows = []
        for name, model in report["models"].items():
            methods = model["methods"]

            def best_of(kind, methods=methods):
                pick = [(m, r, s) for m, rules in methods.items() for r, s in rules.items()
                        if m.split(":")[0] == kind and m.count(":") < 2]
                m, r, s = min(pick, key=lambda x: x[2]["aer"])
                return f"{s['aer']:.1f} ({m}, {r})"

            served = model["served"]
            score = methods[served["method"]][served["rule"]]
            tau = model.get("agreement", {})
            rows.append([name, f"{score['aer']:.1f} ({served['method']}, {served['rule']})",
                         best_of("attention"), best_of("shifted"), best_of("saliency"),
                         best_of("leave-one-out"),
                         f"{tau.get('saliency', '-')} / {tau.get('leave-one-out', '-')}",
                         f"{model['tags']['exact']:.0%} of {model['tags']['tags']}"])
        if "eflomal" in report:
            rule, score = min(report["eflomal"].items(), key=lambda x: x[1]["aer"])
            rows.append(["eflomal", f"{score['aer']:.1f} ({rule})", "", "", "", "", "", ""])
        out += [f"**{report['pair']}**, {report['pairs']} gold dev pairs "
                f"([{path.stem}.md](../reports/alignment/{path.stem}.md)): AER, lower is better",
                "", _table(["model", "served", "best attention layer", "best shifted", "saliency",
                            "leave-one-out", "tau with gradient / leave-one-out", "tags exact"],
                           rows), ""]
        for name, model in report["models"].items():
            cells = ", ".join(f"layer {a['layer']} {a['replacement']} {a['top1_changed']:.0%}"
                              for a in model.get("ablation", []))
            if cells:
                out.append(f"- {name}: top predictions changed when a layer's attention is "
                           f"replaced: {cells}")
        out.append("")
    return "\n".join(out).rstrip("\n")


def settings_table() -> str:
    """Every ``NMT_*`` variable of the service (serve/settings.py): default, bounds, meaning."""
    from serve.settings import Settings

    comments = _field_comments(Settings)
    rows = []
    for name, field in Settings.model_fields.items():
        bounds = [f"{op} {getattr(m, attr)}" for m in field.metadata
                  for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                  if getattr(m, attr, None) is not None]
        default = "Linux: true, else false" if name == "processes" else f"`{field.default!r}`"
        rows.append([f"`NMT_{name.upper()}`", default, " and ".join(bounds),
                     comments.get(name, "").replace("|", "\\|")])
    return _table(["variable", "default", "allowed", "meaning"], rows)


def detect_table() -> str:
    """Language identification accuracy per language and input length (bench/detect.py)."""
    report = _read("reports/detect.json")
    lengths = list(next(iter(report["accuracy"].values())))
    rows = [[lang, *(f"{row[n]:.1%}" for n in lengths)] for lang, row in report["accuracy"].items()]
    return _table(["language", *lengths], rows)


def _field_comments(cls: type) -> dict[str, str]:
    """Each field's comment in the dataclass source: the one on its line, else the block
    directly above it."""
    import inspect

    source = inspect.getsource(cls)
    lines = source.splitlines()
    comments = {}
    for node in ast.parse(source).body[0].body:
        if not isinstance(node, ast.AnnAssign):
            continue
        line = lines[node.lineno - 1]
        trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        above, at = [], node.lineno - 2
        while at >= 0 and lines[at].strip().startswith("#"):
            above.insert(0, lines[at].strip().lstrip("# ").strip())
            at -= 1
        comments[node.target.id] = trailing or " ".join(above)
    return comments


def config_reference() -> str:
    """Every key of every config section: type, default, allowed values, meaning."""
    import dataclasses

    out = ["# Config reference", "",
           "Every key of a training config (`configs/*.toml`, `--set section.key=value`), generated",
           "from `nmt/core/config.py` by `python scripts/docs.py`: its type, its default, what the",
           "rules allow (a value outside is refused in one line when the config is read) and what",
           "it means. A config also has a top-level `name` (the run folder under `runs/`).", ""]
    for section, cls in SECTIONS.items():
        comments = _field_comments(cls)
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            rows.append([f"`{section}.{f.name}`", f"`{kind}`", f"`{default!r}`",
                         RULES[section][f.name][1], comments.get(f.name, "").replace("|", "\\|")])
        out += [f"## [{section}]", "", _table(["key", "type", "default", "allowed", "meaning"], rows), ""]
    return "\n".join(out)


BLOCKS = {"README.md": {"results": results_table, "speed": speed_table},
          "docs/STUDY.md": {"claims": study_claims},
          "docs/ALIGNMENT.md": {"alignment": alignment_table},
          "docs/PERFORMANCE.md": {"peer": peer_table, "faults": faults_table,
                                  "scale": scale_table},
          "docs/SERVING.md": {"settings": settings_table, "detect": detect_table},
          "docs/EVALUATION.md": {"systems": systems_table, "robustness": robustness_table,
                                 "directions": directions_table}}
FILES = {"docs/CONFIG.md": config_reference}


def _replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- generated:{name} -->).*?(<!-- /generated:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- generated:{name} --> block to fill")
    return pattern.sub(lambda m: m.group(1) + "\n" + body + "\n" + m.group(2), text)


def generated() -> dict[Path, str]:
    """Every generated file's full text, as it should be now."""
    out = {}
    for name, blocks in BLOCKS.items():
        text = (ROOT / name).read_text(encoding="utf-8")
        for block, make in blocks.items():
            text = _replace_block(text, block, make())
        out[ROOT / name] = text
    for name, make in FILES.items():
        out[ROOT / name] = make() + "\n"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args()
    stale = []
    for path, text in generated().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date (run python scripts/docs.py): " + ", ".join(map(str, stale)))
        return 1
    print(("written: " if stale else "up to date: ") + ", ".join(map(str, stale or generated())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
