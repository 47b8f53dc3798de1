"""Configuration: frozen dataclasses, loaded from commented TOML files, overridable from the CLI.

A config is the full recipe of a model. It is saved as ``config.json`` in every model directory,
so a model can always be rebuilt exactly as it was trained.

    cfg = load_config("configs/transformer-de-en.toml", overrides=["train.max_epochs=5"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from nmt.core.errors import NmtError

# One tag per target language a multilingual model can be asked for (``<2en>``: into English);
# the tokenizer reserves their ids.
LANGUAGE_TAGS = ("<2en>", "<2de>", "<2fr>", "<2cs>")


class ConfigError(NmtError):
    """A config file or override that cannot be used; the message says where and why."""


# Weights for decoding (nmt/decode/quantize.py): int8 is the default, measured faster here at equal BLEU.
PRECISIONS = ("int8", "none")
DEFAULT_PRECISION = "int8"

@dataclass(frozen=True)
class DataConfig:
    # A folder of {split}.{lang}[.gz] files (Multi30k's layout), or explicit files below.
    corpus: str = "data/multi30k"
    src_lang: str = "de"  # source language code (a bilingual model)
    tgt_lang: str = "en"  # target language code
    # Several directions in one model, e.g. ["de-en", "en-de", "fr-en"] (src_lang/tgt_lang are
    # then unused): every pair is built from the corpus's multi-parallel files, and the model
    # reads the target language as a tag token before the source (nmt/data/prepare.py).
    pairs: tuple[str, ...] = ()
    train_split: str = "train"  # split of data.corpus trained on
    valid_split: str = "val"  # split scored each epoch; it chooses best/
    # A user's own parallel corpus: two aligned files, or one TSV of "source<TAB>target" lines.
    src_file: str = ""
    tgt_file: str = ""  # target side of src_file, line by line
    tsv_file: str = ""  # one file of source<TAB>target lines instead
    # A dataset instead: a local Parquet / JSON-lines file or saved dataset folder, or
    # "hf:NAME[:CONFIG]" from the Hugging Face hub (nmt/data/sources.py).
    dataset: str = ""
    # More corpora, each "SPEC" or "SPEC@WEIGHT" (a.nl+a.en, x.tsv, x.parquet, hf:NAME; weight 2:
    # every pair twice an epoch, 0.5: a seeded half), interleaved with the one above.
    corpora: tuple[str, ...] = ()
    valid_src_file: str = ""  # validation pairs of your own, else valid_split
    valid_tgt_file: str = ""  # their targets
    test_src_file: str = ""  # test pairs of your own (nmt release scores them)
    test_tgt_file: str = ""  # their targets
    # With your own corpus and no valid/test files: this many pairs each are drawn from it
    # (seeded; at most 1/20 of the corpus each) and kept out of training.
    heldout_pairs: int = 1000
    # Cleaning while preparing (nmt/data/clean.py): exact duplicate pairs dropped.
    dedupe: bool = True
    # Pairs whose word counts differ more than this many times dropped (0: never).
    max_length_ratio: float = 9.0
    # Prepared corpora (token stores, nmt/data/store.py) are kept here, named by their inputs.
    store_dir: str = "data/stores"
    # Cleaned pairs per chunk of preparation and shard of the store (Multi30k is one); batches
    # are bucketed by length within a shard.
    shard_pairs: int = 100_000
    # The vocabulary is trained on a seeded sample of this many training pairs.
    vocab_sample: int = 1_000_000
    # Joint SentencePiece vocabulary over both languages.
    vocab_size: int = 8000
    spm_model_type: str = "unigram"  # "unigram" (truecasing needs it) or "bpe"
    # Pairs longer than this many subwords (either side) are dropped from training, with a count.
    max_tokens_per_sentence: int = 128
    # Training pairs for what people type (nmt/data/augment.py; docs/TUNING.md measures each).
    join_fraction: float = 0.0  # extra pairs of 2..join_max consecutive pairs joined, per pair
    join_max: int = 4  # at most this many pairs joined
    lowercase_fraction: float = 0.0  # extra copies with the source lowercased, per pair
    placeholder_fraction: float = 0.0  # pairs whose shared numbers become placeholders
    span_fraction: float = 0.0  # pairs given a placeholder or invented name on both sides
    real_name_share: float = 0.0  # of those names: real first names/surnames instead (Faker's)
    # A model directory whose translations of the training sources replace the references
    # (sequence-level knowledge distillation, nmt/train/distill.py); "" trains on the references.
    teacher: str = ""
    # With a teacher: train on the references and the teacher's translations together, each
    # source twice ("data diversification"); the Transformer's val BLEU +1.0 (docs/TUNING.md).
    keep_references: bool = False


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "transformer"  # "transformer" or "rnn"
    # Transformer (names from "Attention Is All You Need").
    d_model: int = 256
    n_heads: int = 4  # attention heads; d_model / n_heads is d_k
    n_encoder_layers: int = 3  # encoder layers
    n_decoder_layers: int = 3  # decoder layers
    d_ff: int = 1024  # inner size of the position-wise feed-forward network
    dropout: float = 0.1  # on embeddings, sublayer outputs (and the RNN's)
    attention_dropout: float = 0.0  # on the attention weights
    pre_norm: bool = True  # LayerNorm before each sublayer (else after, as in the paper)
    max_positions: int = 1024  # longest sequence the positional table covers
    # "sqrt_dk": softmax(QK^T / sqrt(d_k))V as in the paper; "none": softmax(QK^T)V, the
    # ablation that shows why the scaling is there (nmt/models/attention.py)
    attention_scale: str = "sqrt_dk"
    # RNN baseline (bidirectional GRU encoder + Bahdanau attention decoder).
    embed_dim: int = 256
    hidden_size: int = 512  # GRU state size (the encoder's, each direction)
    rnn_layers: int = 1  # GRU layers
    rnn_bidirectional: bool = True  # encoder reads both ways (else left to right only)
    rnn_attention: bool = True  # additive attention (else the encoder's last state as context)
    # Shared by both: one embedding matrix for source, target and output projection.
    tie_embeddings: bool = True


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1  # data order, dropout, augmentation
    max_tokens: int = 4000  # token budget of a batch: source + target, padding counted
    lr: float = 1e-3  # peak learning rate, reached after warmup
    warmup_steps: int = 1000  # linear warmup from 0 to lr
    # After warmup: "inverse_sqrt" (lr * sqrt(warmup / step), open-ended) or "linear" (down to 0
    # at max_steps, so the last updates anneal instead of stopping at whatever lr was reached).
    lr_schedule: str = "inverse_sqrt"
    max_steps: int = 0  # stop after this many updates; 0 means none ("linear" needs it)
    adam_beta1: float = 0.9  # Adam's first-moment decay
    adam_beta2: float = 0.98  # Adam's second-moment decay
    adam_eps: float = 1e-9  # Adam's epsilon
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    label_smoothing: float = 0.1  # share of the target's probability spread over the vocabulary
    clip_norm: float = 1.0  # gradients clipped to this global norm
    max_epochs: int = 40  # stop after this many passes over the training data
    max_minutes: float = 0.0  # wall-time budget; 0 means none
    patience: int = 0  # early stopping: epochs without a better val BLEU; 0 means none
    average_last: int = 5  # average the weights of the last N epoch checkpoints
    precision: str = "bf16"  # "bf16" (autocast, fp32 master weights) or "fp32"
    threads: int = 0  # torch threads; 0 means all cores
    device: str = "auto"  # "auto" (a CUDA GPU when there is one, else the CPU), "cpu" or "cuda"
    save_every_steps: int = 500  # training state for exact resume, besides every epoch end
    log_every_steps: int = 50  # a log line (and metrics.jsonl row) every N updates
    eval_max_sentences: int = 0  # val sentences scored for BLEU each epoch; 0 means all


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 4  # hypotheses kept per step; 1 is greedy
    length_penalty: float = 0.6  # GNMT alpha: score / ((5 + |y|) / 6) ** alpha
    max_len_ratio: float = 1.5  # a hypothesis may be at most ratio * |x| + offset tokens long
    max_len_offset: int = 10  # (see max_len_ratio)
    max_tokens: int = 6000  # token budget of a translation batch (sentences x beams x length)
    # Safety nets of nmt/decode/cutting.py: a longer sentence is halved at a space; a translation
    # with fewer subwords than this share of its source's is retried clause by clause.
    max_source_tokens: int = 200
    min_length_ratio: float = 0.5  # (see max_source_tokens)
    # A sentence of more subwords than this is translated clause by clause (split at the
    # punctuation nearest its middle, again while a piece is longer); 0: never. Models lose
    # quality past the lengths they were trained on: chosen on val (docs/TUNING.md).
    clause_split_tokens: int = 0


@dataclass(frozen=True)
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def replace(self, **sections: Any) -> Config:
        return dataclasses.replace(self, **sections)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "decode": DecodeConfig,
}


def _field_types(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _coerce(value: Any, expected: type, where: str) -> Any:
    """Check a value read from TOML/JSON against a field's type (ints are accepted as floats)."""
    origin = typing.get_origin(expected)
    if origin is tuple:  # a TOML/JSON array
        item_type = typing.get_args(expected)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        return tuple(_coerce(item, item_type, f"{where}[{i}]") for i, item in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(expected):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a {expected}")
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected nothing, got {value!r}")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _parse_literal(text: str, expected: type, where: str) -> Any:
    """Parse the right-hand side of ``--set section.key=value`` for a field of type ``expected``."""
    if expected is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {text!r}")
    if expected is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {text!r}") from None
    if expected is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {text!r}") from None
    if typing.get_origin(expected) is tuple:  # --set data.pairs=de-en,en-de
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return text


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    types_by_name = _field_types(cls)
    unknown = sorted(set(values) - set(types_by_name))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(types_by_name)}"
        )
    checked = {k: _coerce(v, types_by_name[k], f"{where}.{k}") for k, v in values.items()}
    return cls(**checked)


def config_from_dict(raw: dict[str, Any], where: str = "config") -> Config:
    unknown = sorted(set(raw) - set(SECTIONS) - {"name"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown section {unknown[0]!r}; valid sections: name, {', '.join(SECTIONS)}"
        )
    sections = {}
    for name, cls in SECTIONS.items():
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        sections[name] = _build_section(cls, value, f"{where}: {name}")
    config = Config(name=str(raw.get("name", "run")), **sections)
    validate(config, where)
    return config


def apply_overrides(config: Config, overrides: list[str], where: str = "--set") -> Config:
    """Apply ``section.key=value`` strings, each type-checked against its field."""
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"{where} {item!r}: expected section.key=value")
        dotted, text = item.split("=", 1)
        section, key = dotted.strip().split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(
                f"{where} {item!r}: unknown section {section!r}; valid sections: "
                f"{', '.join(SECTIONS)}"
            )
        types_by_name = _field_types(SECTIONS[section])
        if key not in types_by_name:
            raise ConfigError(
                f"{where}: unknown key {dotted!r}; valid keys in [{section}]: "
                f"{', '.join(types_by_name)}"
            )
        value = _parse_literal(text, types_by_name[key], f"{where} {dotted}")
        new_section = dataclasses.replace(getattr(config, section), **{key: value})
        config = dataclasses.replace(config, **{section: new_section})
    validate(config, where)
    return config


# What each value may be. Every field of every section has a rule (a test checks that), so a
# bad value is refused when the config is read, in one line naming it, never deep in training.
def _range(low=None, high=None, low_open=False, high_open=False):
    def check(value):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return not ((low is not None and (value <= low if low_open else value < low))
                    or (high is not None and (value >= high if high_open else value > high)))
    text = " and ".join(
        ([f"{'>' if low_open else '>='} {low}"] if low is not None else [])
        + ([f"{'<' if high_open else '<='} {high}"] if high is not None else []))
    return check, text or "a finite number"


def _pairs():
    def check(value):
        try:
            split = [pair.split("-") for pair in value]
        except AttributeError:
            return False
        return all(len(p) == 2 and p[0] != p[1] and all(x.isascii() and x.isalnum() for x in p)
                   for p in split) and len(set(value)) == len(value)
    return check, "distinct source-target pairs of language codes, such as ['de-en', 'en-de']"


def _corpora():
    def check(value):
        return all(isinstance(v, str) and v.strip() for v in value)
    return check, "corpus specs such as ['a.nl+a.en', 'b.tsv@0.5'] (docs/TRAINING.md)"


def _choice(*options):
    return (lambda value: value in options), "one of " + ", ".join(repr(o) for o in options)


def _language():
    return (lambda value: bool(value) and value.isascii() and value.isalnum()), \
        "a language code such as 'de'"


_ANY = ((lambda value: True), "anything")
_POSITIVE, _NON_NEGATIVE = _range(1), _range(0)
_RUN_NAME = re.compile(r"[\w.-]{1,100}")
# Upper bounds on sizes, so that a config (a model directory's too) cannot ask for more memory
# than a machine has before its weights are even read: far above what fits a 2-core machine
# (the shipped models have d_model 256 and 3+3 layers), around what one large GPU could hold.
_WIDTH = _range(1, 16_384)  # d_model, d_ff / 4, embeddings, RNN states
_LAYERS = _range(1, 64)
_SHARE = _range(0.0, 1.0)
_DROPOUT = _range(0.0, 1.0, high_open=True)
RULES: dict[str, dict[str, tuple]] = {
    "data": {"corpus": _ANY, "src_lang": _language(), "tgt_lang": _language(), "pairs": _pairs(),
             "train_split": _ANY, "valid_split": _ANY, "src_file": _ANY, "tgt_file": _ANY,
             "tsv_file": _ANY, "valid_src_file": _ANY, "valid_tgt_file": _ANY,
             "dataset": _ANY, "corpora": _corpora(), "test_src_file": _ANY,
             "test_tgt_file": _ANY, "heldout_pairs": _NON_NEGATIVE, "dedupe": _ANY,
             "max_length_ratio": _range(0.0), "store_dir": _ANY, "shard_pairs": _range(10),
             "vocab_sample": _range(1_000),
             "vocab_size": _range(16, 1_000_000), "spm_model_type": _choice("unigram", "bpe"),
             "max_tokens_per_sentence": _range(2), "join_fraction": _SHARE, "join_max": _range(2),
             "lowercase_fraction": _SHARE, "placeholder_fraction": _SHARE, "span_fraction": _SHARE,
             "real_name_share": _SHARE, "teacher": _ANY,
             "keep_references": _ANY},
    "model": {"arch": _choice("transformer", "rnn"), "d_model": _WIDTH, "n_heads": _range(1, 128),
              "n_encoder_layers": _LAYERS, "n_decoder_layers": _LAYERS, "d_ff": _range(1, 65_536),
              "dropout": _DROPOUT, "attention_dropout": _DROPOUT, "pre_norm": _ANY,
              "max_positions": _range(16, 65_536), "embed_dim": _WIDTH, "hidden_size": _WIDTH,
              "rnn_layers": _range(1, 16), "tie_embeddings": _ANY,
              "attention_scale": _choice("sqrt_dk", "none"), "rnn_bidirectional": _ANY,
              "rnn_attention": _ANY},
    "train": {"seed": _NON_NEGATIVE, "max_tokens": _range(8), "lr": _range(0.0, 1.0, low_open=True),
              "warmup_steps": _NON_NEGATIVE, "lr_schedule": _choice("inverse_sqrt", "linear"),
              "max_steps": _NON_NEGATIVE, "adam_beta1": _range(0.0, 1.0, high_open=True),
              "adam_beta2": _range(0.0, 1.0, high_open=True),
              "adam_eps": _range(0.0, 1.0, low_open=True), "weight_decay": _range(0.0, 1.0),
              "label_smoothing": _DROPOUT, "clip_norm": _range(0.0), "max_epochs": _POSITIVE,
              "max_minutes": _range(0.0), "patience": _NON_NEGATIVE, "average_last": _POSITIVE,
              "precision": _choice("bf16", "fp32"), "threads": _NON_NEGATIVE,
              "device": _choice("auto", "cpu", "cuda"), "save_every_steps": _NON_NEGATIVE,
              "log_every_steps": _POSITIVE, "eval_max_sentences": _NON_NEGATIVE},
    "decode": {"beam_size": _range(1, 64), "length_penalty": _range(0.0, 10.0),
               "max_len_ratio": _range(0.0, 10.0, low_open=True), "max_len_offset": _range(0, 1000),
               "max_tokens": _range(8), "max_source_tokens": _range(8),
               "min_length_ratio": _range(0.0, 1.0, high_open=True),
               "clause_split_tokens": _NON_NEGATIVE},
}


# The most parameters a config may build: 8 GB of fp32 weights, before optimizer state.
MAX_PARAMETERS = 2_000_000_000


def estimated_parameters(m: ModelConfig, vocab_size: int) -> int:
    """About how many numbers the model of ``m`` holds (weights, and the positions table)."""
    if m.arch == "rnn":
        layer = 3 * (m.embed_dim + m.hidden_size) * m.hidden_size
        return vocab_size * m.embed_dim * 2 + layer * (2 * m.rnn_layers + 2) + 6 * m.hidden_size ** 2
    d = m.d_model
    encoder = m.n_encoder_layers * (4 * d * d + 2 * d * m.d_ff)
    decoder = m.n_decoder_layers * (8 * d * d + 2 * d * m.d_ff)
    return encoder + decoder + vocab_size * d * (1 if m.tie_embeddings else 2) + m.max_positions * d


def _relations(config: Config) -> list[str]:
    """Problems between values (each value alone being fine)."""
    m, t, d, dec = config.model, config.train, config.data, config.decode
    problems = []
    size = estimated_parameters(m, d.vocab_size)
    if size > MAX_PARAMETERS:
        problems.append(f"the model would hold about {size:,} numbers, more than the "
                        f"{MAX_PARAMETERS:,} a config may ask for (model sizes, data.vocab_size)")
    if d.pairs and (d.src_file or d.tgt_file or d.tsv_file or d.valid_src_file or d.dataset
                    or d.corpora or d.test_src_file):
        problems.append("data.pairs builds every pair from the multi-parallel files of "
                        "data.corpus; it cannot be combined with data.src_file, data.tgt_file, "
                        "data.tsv_file, data.dataset, data.corpora or data valid/test files")
    if sum(map(bool, (d.src_file or d.tgt_file, d.tsv_file, d.dataset))) > 1:
        problems.append("give one training corpus: data.src_file + data.tgt_file, "
                        "data.tsv_file or data.dataset (more go in data.corpora)")
    if not d.pairs and d.src_lang == d.tgt_lang:
        problems.append(f"data.src_lang and data.tgt_lang are both {d.src_lang!r}: a model "
                        "translates from one language into another")
    if d.pairs and d.teacher:
        problems.append("data.teacher distils one direction (data.src_lang -> data.tgt_lang); "
                        "it cannot be combined with data.pairs")
    if d.keep_references and not d.teacher:
        problems.append("data.keep_references keeps the references beside a teacher's "
                        "translations; it needs data.teacher")
    if d.pairs:
        tagged = [tag[2:-1] for tag in LANGUAGE_TAGS]
        untagged = sorted({p.split("-")[1] for p in d.pairs} - set(tagged))
        if untagged:
            problems.append(f"data.pairs: no target tag for {', '.join(untagged)} (the "
                            f"vocabulary reserves tags for {', '.join(tagged)})")
    if m.d_model % m.n_heads:
        problems.append(f"model.d_model ({m.d_model}) must be divisible by model.n_heads "
                        f"({m.n_heads})")
    if t.lr_schedule == "linear" and t.max_steps <= t.warmup_steps:
        problems.append(f"train.lr_schedule 'linear' decays to 0 at train.max_steps, which must "
                        f"exceed train.warmup_steps ({t.warmup_steps}); got {t.max_steps}")
    longest_target = int(dec.max_source_tokens * dec.max_len_ratio) + dec.max_len_offset + 2
    needed = max(d.max_tokens_per_sentence, dec.max_source_tokens, longest_target) + 1
    if m.arch == "transformer" and m.max_positions < needed:
        problems.append(f"model.max_positions ({m.max_positions}) must cover the longest "
                        f"sequence the config allows ({needed}: data.max_tokens_per_sentence, "
                        "decode.max_source_tokens and the target length they permit)")
    return problems


def directions(data: DataConfig) -> list[tuple[str, str]]:
    """The (source, target) language pairs a config trains: ``data.pairs``, else the one pair."""
    if data.pairs:
        return [tuple(pair.split("-")) for pair in data.pairs]
    return [(data.src_lang, data.tgt_lang)]


def validate(config: Config, where: str = "config") -> None:
    """Reject impossible values before any work starts: one line, naming each key and value."""
    problems = []
    for section, rules in RULES.items():
        values = getattr(config, section)
        for key, (check, allowed) in rules.items():
            value = getattr(values, key)
            if not check(value):
                problems.append(f"{section}.{key} = {value!r}: must be {allowed}")
    if not _RUN_NAME.fullmatch(config.name) or set(config.name) == {"."}:
        problems.append(f"name = {config.name[:40]!r}: must be a plain folder name (letters, "
                        "digits, '.', '_', '-'), the run's folder under runs/")
    if not problems:
        problems = _relations(config)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML (or a model directory's JSON) config, then apply ``section.key=value`` overrides."""
    if path is None:
        config = Config()
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            if path.suffix == ".json":
                raw = json.loads(path.read_text(encoding="utf-8"))
            else:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot parse: {error}") from None
        except RecursionError:
            raise ConfigError(f"{path}: cannot parse: nested too deeply") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a table of sections")
        raw.setdefault("name", path.stem)
        config = config_from_dict(raw, str(path))
    return apply_overrides(config, overrides or [])
