"""The command line: ``nmt data | train | translate | evaluate | release | serve``.

Heavy modules (torch models, datasets, the web stack) are imported inside the commands that need
them, so ``nmt --help`` and ``nmt data stats`` start fast. A user error ends with one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nmt import __version__
from nmt.config import DEFAULT_PRECISION, PRECISIONS
from nmt.errors import NmtError


def eprint(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- nmt data


def cmd_data_fetch(args) -> None:
    from nmt.corpus import fetch_multi30k

    if args.corpus != "multi30k":
        raise NmtError(f"unknown corpus {args.corpus!r}; available: multi30k")
    dest = fetch_multi30k(args.dest, source=args.source, from_dir=args.from_dir,
                          log=lambda *a, **k: eprint(*a))
    eprint(f"Multi30k is in {dest} (checked)")


def cmd_data_stats(args) -> None:
    from nmt.corpus import corpus_stats

    langs = args.pair.split("-")
    tokenizer = None
    spm = Path(args.spm) if args.spm else None
    if spm is None:
        found = sorted(Path("models").glob(f"*{args.pair}*/spm.model"))
        spm = found[0] if found else None
    if spm is not None:
        from nmt.tokenizer import Tokenizer

        tokenizer = Tokenizer(spm)
    rows = corpus_stats(args.data, langs, tokenizer)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    columns = ["split", "lang", "lines", "words"] + (["subwords"] if tokenizer else []) + [
        "p50", "p95", "max"]
    print("\t".join(columns) + ("" if tokenizer else "\t(words per sentence: p50 p95 max)"))
    for row in rows:
        print("\t".join(str(row[c]) for c in columns))
    if tokenizer:
        print(f"subwords counted with {spm}")


def cmd_data_vocab(args) -> None:
    from nmt.config import load_config
    from nmt.corpus import load_split
    from nmt.tokenizer import train_tokenizer

    config = load_config(args.config, args.set)
    data = load_split(config.data, config.data.train_split)
    tok = train_tokenizer(data.src + data.tgt, args.out, config.data.vocab_size,
                          config.data.spm_model_type)
    eprint(f"wrote {args.out}: {tok.vocab_size} pieces ({config.data.spm_model_type})")


# ----------------------------------------------------------------------------- nmt train


def cmd_train(args) -> None:
    from nmt.memory import keep_freed_memory

    keep_freed_memory()  # before torch allocates anything (nmt/memory.py)
    from nmt.config import load_config

    overrides = list(args.set)
    if args.src_file or args.tgt_file:
        overrides += [f"data.src_file={args.src_file or ''}", f"data.tgt_file={args.tgt_file or ''}"]
    if args.tsv:
        overrides.append(f"data.tsv_file={args.tsv}")
    if args.resume:
        run_dir = Path(args.resume)
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise NmtError(f"{run_dir}: no run to resume (config.json missing)")
        config = load_config(saved, overrides)
    else:
        if not args.config:
            raise NmtError("give --config FILE (e.g. configs/transformer-de-en.toml) or --resume RUN_DIR")
        config = load_config(args.config, overrides)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config.name
    from nmt.training import train

    train(config, run_dir, resume=bool(args.resume))


# ----------------------------------------------------------------------------- nmt translate


def cmd_translate(args) -> None:
    from nmt.translator import Translator

    if args.beam < 1:
        raise NmtError(f"--beam must be at least 1, got {args.beam}")
    if not 1 <= args.n_best <= max(args.beam, 1):
        raise NmtError(f"--n-best must be between 1 and --beam ({args.beam})")
    translator = Translator.load(args.model, threads=args.threads, quantize=args.quantize)
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise NmtError(f"{path}: input file not found")
        lines = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = sys.stdin.read().splitlines()
    results = translator.translate_full(lines, beam_size=args.beam, n_best=args.n_best)
    out_lines = []
    for result in results:
        if args.n_best > 1:
            texts = [result.text] + [text for text, _ in result.alternatives]
            out_lines.append("\t".join(texts))
        else:
            out_lines.append(result.text)
    text = "".join(line + "\n" for line in out_lines)
    if args.output:
        from nmt.checkpoint import atomic_write_text

        atomic_write_text(Path(args.output), text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


# ----------------------------------------------------------------------------- nmt release


def cmd_release(args) -> None:
    from nmt.release import release

    release(Path(args.run_dir), Path(args.to), data=args.data, beam_size=args.beam,
            command=args.command, quantize=args.quantize, log=eprint)


# ----------------------------------------------------------------------------- nmt evaluate


def cmd_evaluate(args) -> None:
    from nmt.report import evaluate_command

    evaluate_command(args)


# ----------------------------------------------------------------------------- nmt serve


def cmd_serve(args) -> None:
    from serve.main import run

    run(models=args.model, host=args.host, port=args.port, quantize=args.quantize)


def add_quantize(parser) -> None:
    parser.add_argument("--quantize", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="weights for decoding: int8 (default; faster here at equal BLEU) "
                             "or none (fp32)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmt", description="Neural machine translation: "
                                     "train, translate, evaluate, serve.")
    parser.add_argument("--version", action="version", version=f"nmt {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="get and inspect corpora").add_subparsers(
        dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="download a corpus and check its checksums")
    fetch.add_argument("corpus", help="multi30k")
    fetch.add_argument("--dest", default="data/multi30k")
    group = fetch.add_mutually_exclusive_group()
    group.add_argument("--from", dest="from_dir", help="copy from a local mirror folder")
    group.add_argument("--source", choices=["github", "hub"], default="github",
                       help="the corpus's public repository (default) or the datasets hub")
    fetch.set_defaults(func=cmd_data_fetch)
    stats = data.add_parser("stats", help="lines, words, subwords and lengths per split")
    stats.add_argument("--data", default="data/multi30k", help="folder of {split}.{lang}.gz files")
    stats.add_argument("--pair", default="de-en")
    stats.add_argument("--spm", help="SentencePiece model to count subwords with")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_data_stats)
    vocab = data.add_parser("vocab", help="train the joint SentencePiece vocabulary")
    vocab.add_argument("--config")
    vocab.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    vocab.add_argument("--out", default="spm.model")
    vocab.set_defaults(func=cmd_data_vocab)

    tr = commands.add_parser("train", help="train a model from a config file")
    tr.add_argument("--config", help="TOML config, e.g. configs/transformer-de-en.toml")
    tr.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a config value (repeatable)")
    tr.add_argument("--run-dir", help="where the run is written (default runs/NAME)")
    tr.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last state")
    tr.add_argument("--src-file", help="source side of your own parallel corpus")
    tr.add_argument("--tgt-file", help="target side of your own parallel corpus")
    tr.add_argument("--tsv", help="your own corpus as source<TAB>target lines")
    tr.set_defaults(func=cmd_train)

    tl = commands.add_parser("translate", help="translate lines from stdin or a file")
    tl.add_argument("--model", required=True, help="a model directory, e.g. models/transformer-de-en")
    tl.add_argument("--beam", type=int, default=4)
    tl.add_argument("--n-best", type=int, default=1, help="print N tab-separated alternatives")
    tl.add_argument("--input")
    tl.add_argument("--output")
    tl.add_argument("--threads", type=int, default=0)
    add_quantize(tl)
    tl.set_defaults(func=cmd_translate)

    ev = commands.add_parser("evaluate", help="score and compare systems on a test set")
    ev.add_argument("--model", action="append", default=[], help="model directory (repeatable)")
    ev.add_argument("--hyp", action="append", default=[], metavar="NAME=FILE",
                    help="hypotheses of another system (repeatable)")
    ev.add_argument("--data", default="data/multi30k")
    ev.add_argument("--split", default="test_2016_flickr")
    ev.add_argument("--pair", help="e.g. de-en (default: the first model's)")
    ev.add_argument("--baseline", help="system the others are tested against")
    ev.add_argument("--beam", type=int, default=4)
    ev.add_argument("--out", default="reports/latest")
    add_quantize(ev)
    ev.set_defaults(func=cmd_evaluate)

    rel = commands.add_parser("release", help="turn a training run into a scored model directory")
    rel.add_argument("run_dir")
    rel.add_argument("--to", required=True, help="e.g. models/transformer-de-en")
    rel.add_argument("--data", default="data/multi30k")
    rel.add_argument("--beam", type=int, default=4)
    rel.add_argument("--command", default="", help="the command that trained it, for the card")
    add_quantize(rel)
    rel.set_defaults(func=cmd_release)

    sv = commands.add_parser("serve", help="serve translations over HTTP")
    sv.add_argument("--model", action="append", default=None,
                    help="model directory (repeatable; default: every one under models/)")
    sv.add_argument("--host", default=None)
    sv.add_argument("--port", type=int, default=None)
    sv.add_argument("--quantize", choices=PRECISIONS, default=None,
                    help="weights for decoding (default int8, or NMT_QUANTIZE)")
    sv.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NmtError as error:
        eprint(f"nmt: error: {error}")
        return 2
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
