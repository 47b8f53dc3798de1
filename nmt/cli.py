"""The command line: ``nmt data | train | translate | evaluate | release | study | export |
serve``.

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
from nmt.core.config import DEFAULT_PRECISION, PRECISIONS
from nmt.core.errors import NmtError


def eprint(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- nmt data


def cmd_data_fetch(args) -> None:
    from nmt.data.corpus import fetch_multi30k

    if args.corpus != "multi30k":
        raise NmtError(f"unknown corpus {args.corpus!r}; available: multi30k")
    dest = fetch_multi30k(args.dest, source=args.source, from_dir=args.from_dir,
                          log=lambda *a, **k: eprint(*a))
    eprint(f"Multi30k is in {dest} (checked)")


def cmd_data_stats(args) -> None:
    from nmt.data.corpus import corpus_stats

    langs = args.pair.split("-")
    tokenizer = None
    spm = Path(args.spm) if args.spm else None
    if spm is None:
        found = sorted(Path("models").glob(f"*{args.pair}*/spm.model"))
        spm = found[0] if found else None
    if spm is not None:
        from nmt.data.tokenizer import Tokenizer

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
    from nmt.data.prepare import vocabulary_only

    config = data_config(args)
    tok = vocabulary_only(config, Path(args.out), log=eprint)
    eprint(f"wrote {args.out}: {tok.vocab_size} pieces ({config.data.spm_model_type})")


def cmd_data_prepare(args) -> None:
    from nmt.data.prepare import prepare_store
    from nmt.train.distill import distilled_targets

    folder = prepare_store(data_config(args), log=eprint, distill=distilled_targets)
    print(folder)


def corpus_overrides(args) -> list[str]:
    """``--src-file`` / ``--tgt-file`` / ``--tsv`` / ``--dataset`` as config overrides: the
    user's own corpus, so no teacher unless asked (``--teacher``), and the languages from the
    options or the files' suffixes (``corpus.nl``, ``corpus.nl.gz``)."""
    own = args.src_file or args.tgt_file or args.tsv or args.dataset
    if not own:
        return []
    overrides = ["data.src_file=" + (args.src_file or ""), "data.tgt_file=" + (args.tgt_file or ""),
                 "data.tsv_file=" + (args.tsv or ""), "data.dataset=" + (args.dataset or ""),
                 "data.teacher=" + (args.teacher or ""), "data.keep_references=false"]
    for side, given, path in (("src", args.src_lang, args.src_file),
                              ("tgt", args.tgt_lang, args.tgt_file)):
        lang = given or (language_suffix(path) if path else None)
        if not lang:
            raise NmtError(f"give --{side}-lang (e.g. --src-lang nl --tgt-lang en): it cannot be "
                           "read from the file names")
        overrides.append(f"data.{side}_lang={lang}")
    return overrides


FILE_TYPES = {"txt", "tsv", "csv", "raw", "tok", "src", "tgt", "out", "xml", "bz2", "xz"}


def language_suffix(path: str) -> str | None:
    """``nl`` of ``train.nl`` or ``train.nl.gz``: a language code as the last suffix (not a
    file type such as ``.txt``)."""
    suffixes = [s[1:] for s in Path(path).suffixes if s != ".gz"]
    code = suffixes[-1] if suffixes else ""
    if code in FILE_TYPES or not (2 <= len(code) <= 3 and code.isalpha() and code.islower()):
        return None
    return code


def data_config(args):
    from nmt.core.config import load_config

    config = load_config(args.config, list(args.set) + corpus_overrides(args))
    if not args.config:  # runs/nl-en rather than runs/run
        config = config.replace(name=f"{config.data.src_lang}-{config.data.tgt_lang}")
    return config


# ----------------------------------------------------------------------------- nmt train


# What may change when a run is resumed: its budget and its bookkeeping. Anything else (the
# model, the data, the optimizer) would make the states on disk describe another run.
RESUMABLE = ("train.max_minutes", "train.max_steps", "train.max_epochs", "train.patience",
             "train.save_every_steps", "train.log_every_steps", "train.eval_max_sentences",
             "train.threads")


def resume_overrides(args) -> list[str]:
    if args.config or args.src_file or args.tgt_file or args.tsv or args.dataset or args.run_dir:
        raise NmtError("--resume continues a run as it was configured; --config, --run-dir, "
                       "--src-file, --tgt-file, --tsv and --dataset start a new one")
    for item in args.set:
        key = item.split("=", 1)[0].strip()
        if key not in RESUMABLE:
            raise NmtError(f"--set {item!r}: {key} cannot change in the middle of a run; on "
                           f"--resume only {', '.join(RESUMABLE)} can")
    return list(args.set)


def cmd_train(args) -> None:
    import shlex

    from nmt.core.config import load_config

    command = "nmt " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    if args.resume:
        run_dir = Path(args.resume)
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise NmtError(f"{saved}: missing, so there is no run to resume here")
        config = load_config(saved, resume_overrides(args))
    else:
        if not (args.config or args.src_file or args.tsv or args.dataset):
            raise NmtError("give --config FILE (e.g. configs/transformer-de-en.toml), your corpus "
                           "(--src-file A --tgt-file B, --tsv or --dataset), or --resume RUN_DIR")
        config = data_config(args)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config.name
    from nmt.train.loop import train

    train(config, run_dir, resume=bool(args.resume), command=command)


# ----------------------------------------------------------------------------- nmt translate


def cmd_translate(args) -> None:
    from nmt.decode.translator import Translator

    if args.beam < 1:
        raise NmtError(f"--beam must be at least 1, got {args.beam}")
    if not 1 <= args.n_best <= max(args.beam, 1):
        raise NmtError(f"--n-best must be between 1 and --beam ({args.beam})")
    translator = Translator.load(args.model, threads=args.threads, quantize=args.quantize)
    if args.source or args.target:
        pair = (args.source or translator.src_lang, args.target or translator.tgt_lang)
        if pair not in translator.pairs:
            raise NmtError(f"{args.model}: translates "
                           f"{', '.join('-'.join(p) for p in translator.pairs)}, not {'-'.join(pair)}")
        translator = translator.for_pair(*pair)
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise NmtError(f"{path}: input file not found")
        lines = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = sys.stdin.read().splitlines()
    results = translator.translate_full(lines, beam_size=args.beam, n_best=args.n_best)
    out_lines = []
    for line, result in zip(lines, results):
        if args.n_best > 1:
            texts = [result.text] + [text for text, _ in result.alternatives]
            out_lines.append("\t".join(texts))
        else:
            out_lines.append(result.text)
        if args.align:  # as Marian prints them: translation ||| source-target word links
            links = translator.word_alignment(line, result.text)
            out_lines[-1] += " ||| " + " ".join(f"{i}-{j}" for i, j in links)
    text = "".join(line + "\n" for line in out_lines)
    if args.output:
        from nmt.core.files import atomic_write_text

        atomic_write_text(Path(args.output), text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


# ----------------------------------------------------------------------------- nmt release


def cmd_release(args) -> None:
    from nmt.train.release import release

    release(Path(args.run_dir), Path(args.to), data=args.data, test_split=args.test_split,
            beam_size=args.beam,
            command=args.command, quantize=args.quantize, log=eprint, replace=args.force >= 1,
            replace_better=args.force >= 2)


# ----------------------------------------------------------------------------- nmt evaluate


def cmd_evaluate(args) -> None:
    from nmt.evaluate.report import evaluate

    evaluate(args.model, args.out, hyp=args.hyp, pair=args.pair, split=args.split,
             data=args.data, beam=args.beam, quantize=args.quantize, baseline=args.baseline,
             robustness=args.robustness, replace=args.force)


# ----------------------------------------------------------------------------- nmt align


def cmd_align(args) -> None:
    from nmt.evaluate.align_report import align_report

    if not args.model:
        raise NmtError("give at least one --model")
    align_report(args.model, args.gold, args.pair, Path(args.out),
                 None if args.no_baseline else args.data, log=eprint)


# ----------------------------------------------------------------------------- nmt study


def cmd_study(args) -> None:
    from nmt.study.report import EXPERIMENTS, run_study
    from nmt.study.runs import Budget

    budget = Budget(steps=args.steps, seeds=tuple(args.seeds), data=args.data,
                    overrides=tuple(args.set))
    names = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    run_study(names, budget, Path(args.runs), Path(args.out), log=eprint)


# ----------------------------------------------------------------------------- nmt export


def cmd_export(args) -> None:
    from nmt.export import check_sentences
    from nmt.models.directory import read_model_config

    model_dir = Path(args.model)
    if read_model_config(model_dir).data.pairs:
        # The engines' own tokenization has no place for the target-language tag.
        raise NmtError(f"{model_dir}: a multilingual model (data.pairs) cannot be exported yet; "
                       "export a bilingual one")
    sentences = check_sentences(model_dir, args.check_data, args.check_sentences)
    if args.format == "ctranslate2":
        from nmt.export.ct2 import export_ctranslate2

        check = export_ctranslate2(model_dir, args.out, args.quantize or "none", sentences)
    else:
        from nmt.export.argos import export_argos

        check = export_argos(model_dir, args.out, args.quantize or "int8", sentences)
    report = {"format": args.format, "out": str(args.out)}
    if check is not None:
        report["greedy_equal_to_nmt"] = f"{check.equal} of {check.sentences} sentences"
    print(json.dumps(report))


# ----------------------------------------------------------------------------- nmt serve


def cmd_serve(args) -> None:
    from serve.main import run

    run(models=args.model, host=args.host, port=args.port, quantize=args.quantize)


def add_quantize(parser) -> None:
    parser.add_argument("--quantize", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="weights for decoding: int8 (default; faster here at equal BLEU) "
                             "or none (fp32)")


class DefaultsFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one worth saying."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "default" not in text and action.option_strings and default is not None \
                and default is not False and default not in ([], "", argparse.SUPPRESS):
            text += f" (default: {action.default})"
        return text


def subcommands(parser, dest: str):
    """A subcommand group whose commands' help names every default."""
    group = parser.add_subparsers(dest=dest, required=True)
    add = group.add_parser
    group.add_parser = lambda *a, **k: add(*a, formatter_class=DefaultsFormatter, **k)
    return group


def add_data_commands(commands) -> None:
    data = subcommands(commands.add_parser("data", help="get and inspect corpora"), "data_command")
    fetch = data.add_parser("fetch", help="download a corpus and check its checksums")
    fetch.add_argument("corpus", help="multi30k")
    fetch.add_argument("--dest", default="data/multi30k", help="folder to put the files in")
    group = fetch.add_mutually_exclusive_group()
    group.add_argument("--from", dest="from_dir", help="copy from a local mirror folder")
    group.add_argument("--source", choices=["github", "hub"], default="github",
                       help="the corpus's public repository (default) or the datasets hub")
    fetch.set_defaults(func=cmd_data_fetch)
    stats = data.add_parser("stats", help="lines, words, subwords and lengths per split")
    stats.add_argument("--data", default="data/multi30k", help="folder of {split}.{lang}.gz files")
    stats.add_argument("--pair", default="de-en", help="source-target languages")
    stats.add_argument("--spm", help="SentencePiece model to count subwords with (default: the "
                       "first models/*PAIR*/spm.model)")
    stats.add_argument("--json", action="store_true", help="print JSON rows")
    stats.set_defaults(func=cmd_data_stats)
    vocab = data.add_parser("vocab", help="train the joint SentencePiece vocabulary (on a "
                            "sample of the corpus, as preparation does; never with a teacher)")
    add_corpus_options(vocab, config=True)
    vocab.add_argument("--out", default="spm.model", help="where to write the model")
    vocab.set_defaults(func=cmd_data_vocab)
    prepare = data.add_parser("prepare", help="stream a corpus into a token store (what "
                              "`nmt train` reads; it prepares one itself when needed)")
    add_corpus_options(prepare, config=True)
    prepare.set_defaults(func=cmd_data_prepare)


def add_corpus_options(parser, config: bool = False) -> None:
    if config:
        parser.add_argument("--config", help="TOML config (default: the built-in defaults)")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override a config value (repeatable; keys: docs/CONFIG.md)")
    parser.add_argument("--src-file", help="source side of your own parallel corpus (.gz or plain)")
    parser.add_argument("--tgt-file", help="target side of your own parallel corpus")
    parser.add_argument("--tsv", help="your own corpus as source<TAB>target lines")
    parser.add_argument("--dataset", help="a Parquet / JSON-lines file, a saved dataset folder, "
                        "or hf:NAME[:CONFIG] from the Hugging Face hub")
    parser.add_argument("--src-lang", help="source language code (default: the --src-file suffix)")
    parser.add_argument("--tgt-lang", help="target language code (default: the --tgt-file suffix)")
    parser.add_argument("--teacher", help="with your own corpus: a model directory whose "
                        "translations become the targets (default: none)")


def add_train_and_translate(commands) -> None:
    tr = commands.add_parser("train", help="train a model from a config file",
                             epilog="Every config key, its type, default, allowed range and meaning: "
                                    "docs/CONFIG.md. A first run: --config configs/quickstart.toml")
    tr.add_argument("--config", help="TOML config, e.g. configs/transformer-de-en.toml")
    tr.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a config value (repeatable; keys: docs/CONFIG.md)")
    tr.add_argument("--run-dir", help="where the run is written (default: runs/NAME)")
    tr.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last state")
    add_corpus_options(tr)
    tr.set_defaults(func=cmd_train)

    tl = commands.add_parser("translate", help="translate lines from stdin or a file")
    tl.add_argument("--model", required=True, help="a model directory, e.g. models/transformer-de-en")
    tl.add_argument("--source", help="source language, e.g. fr (default: the model's first pair)")
    tl.add_argument("--target", help="target language, e.g. en (a multilingual model has several)")
    tl.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    tl.add_argument("--n-best", type=int, default=1, help="print N tab-separated alternatives")
    tl.add_argument("--input", help="file of lines to translate (default: stdin)")
    tl.add_argument("--output", help="file to write (default: stdout)")
    tl.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    tl.add_argument("--align", action="store_true", help="append ' ||| i-j ...': source word i "
                    "gives translation word j (0-indexed, words split on spaces)")
    add_quantize(tl)
    tl.set_defaults(func=cmd_translate)


def add_evaluate_release_serve(commands) -> None:
    ev = commands.add_parser("evaluate", help="score and compare systems on a test set")
    ev.add_argument("--model", action="append", default=[], help="model directory (repeatable)")
    ev.add_argument("--hyp", action="append", default=[], metavar="NAME=FILE",
                    help="hypotheses of another system (repeatable)")
    ev.add_argument("--data", default="data/multi30k", help="corpus folder")
    ev.add_argument("--split", default="test_2016_flickr", help="split to score (val to tune)")
    ev.add_argument("--pair", help="e.g. de-en (default: every direction of the first model)")
    ev.add_argument("--baseline", help="system the others are tested against")
    ev.add_argument("--beam", type=int, default=4, help="beam size")
    ev.add_argument("--out", default="reports/latest", help="report folder")
    ev.add_argument("--force", action="store_true", help="replace --out if it exists")
    ev.add_argument("--no-robustness", dest="robustness", action="store_false",
                    help="skip the robustness sets (long, UPPER/lower, pass-through; default on)")
    add_quantize(ev)
    ev.set_defaults(func=cmd_evaluate)

    rel = commands.add_parser("release", help="turn a training run into a scored model directory")
    rel.add_argument("run_dir", help="a finished training run, e.g. runs/transformer-de-en")
    rel.add_argument("--to", required=True, help="a new model directory, e.g. models/my-de-en")
    rel.add_argument("--force", action="count", default=0,
                     help="replace --to if it exists; twice, even when its val BLEU is higher")
    rel.add_argument("--data", help="folder of {split}.{lang} val and test files (default: the "
                     "run's own, from its data.json: your files, the pairs drawn from your "
                     "corpus, or data/multi30k)")
    rel.add_argument("--test-split", help="the test split in --data (default: the run's: test, "
                     "or test_2016_flickr for Multi30k)")
    rel.add_argument("--beam", type=int, default=4, help="beam size")
    rel.add_argument("--command", default="", help="the command that trained it, for the card "
                     "(default: the run's command.txt)")
    add_quantize(rel)
    rel.set_defaults(func=cmd_release)

    al = commands.add_parser("align", help="word alignments of models against gold ones: AER of "
                             "every method, eflomal beside them (docs/ALIGNMENT.md)")
    al.add_argument("--model", action="append", default=[], help="model directory (repeatable)")
    al.add_argument("--gold", required=True, help="gold set NAME (NAME.txt: 'source ||| target' "
                    "tokenized; NAME.talp: links), e.g. ../shared/data/alignment/de-en.dev")
    al.add_argument("--pair", required=True, help="its direction, e.g. de-en")
    al.add_argument("--data", default="data/multi30k", help="the baseline's training corpus")
    al.add_argument("--no-baseline", action="store_true", help="skip eflomal")
    al.add_argument("--out", default="reports/alignment", help="where the JSON and table go")
    al.set_defaults(func=cmd_align)

    st = commands.add_parser("study", help="measure the lecture's claims on our own models "
                             "(reports/study/, docs/STUDY.md)")
    st.add_argument("experiment", nargs="?", default="all",
                    choices=["all", "long-range", "heads", "sqrt-dk"],
                    help="long-range: RNNs, direction, attention, the Transformer on long "
                    "inputs; heads: 1-8 heads; sqrt-dk: why attention divides by sqrt(d_k); "
                    "all (default): the three")
    st.add_argument("--steps", type=int, default=500, help="updates of 4,000 tokens per model")
    st.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="a model per seed")
    st.add_argument("--data", default="data/multi30k", help="corpus folder (de-en: train, val, "
                    "test_2016_flickr)")
    st.add_argument("--runs", default="runs/study", help="where the models train (resumable)")
    st.add_argument("--out", default="reports/study", help="where the study's page and data go")
    st.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting of every model (e.g. train.device=cuda)")
    st.set_defaults(func=cmd_study)

    ex = commands.add_parser("export", help="a model for CTranslate2 or Argos Translate / "
                             "LibreTranslate (pip install -e '.[export]')")
    ex.add_argument("--format", choices=["ctranslate2", "argos"], required=True)
    ex.add_argument("model", help="a Transformer model directory, e.g. models/transformer-de-en")
    ex.add_argument("out", help="a CTranslate2 model folder, or a .argosmodel file")
    ex.add_argument("--quantize", choices=["none", "int8"], default=None,
                    help="weights as saved (default: none for ctranslate2, which quantizes at "
                         "load with compute_type; int8 for argos, as Argos packages are)")
    ex.add_argument("--check-data", default="data/multi30k", help="corpus folder whose val "
                    "sentences check the export (built-in sentences where it is absent)")
    ex.add_argument("--check-sentences", type=int, default=100,
                    help="sentences both engines translate to check the export")
    ex.set_defaults(func=cmd_export)

    sv = commands.add_parser("serve", help="serve translations over HTTP")
    sv.add_argument("--model", action="append", default=None,
                    help="model directory (repeatable; default: every one under models/)")
    sv.add_argument("--host", default=None, help="address to listen on (default: NMT_HOST or "
                    "127.0.0.1)")
    sv.add_argument("--port", type=int, default=None, help="port (default: NMT_PORT or 5000)")
    sv.add_argument("--quantize", choices=PRECISIONS, default=None,
                    help="weights for decoding (default int8, or NMT_QUANTIZE)")
    sv.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmt", description="Neural machine translation: "
                                     "train, translate, evaluate, serve.")
    parser.add_argument("--version", action="version", version=f"nmt {__version__}")
    commands = subcommands(parser, "command")
    add_data_commands(commands)
    add_train_and_translate(commands)
    add_evaluate_release_serve(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from nmt.core.memory import keep_freed_memory

    keep_freed_memory()  # before torch allocates anything, for every command (nmt/core/memory.py)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NmtError as error:
        eprint(f"nmt: error: {error}")
        return 2
    except BrokenPipeError:
        return 0
    except OSError as error:  # a full disk, a read-only folder, a file where a folder should be
        where = f"{error.filename}: " if error.filename else ""
        eprint(f"nmt: error: {where}{error.strerror or error}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
