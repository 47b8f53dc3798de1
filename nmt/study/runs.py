"""The study's models: one recipe each, trained for the same budget, resumed where they stopped.

Every model reads the same data (de-en Multi30k references, no augmentation, no teacher: the
architectures are compared, not the recipes) and trains ``steps`` updates of ``max_tokens``
tokens with the same optimizer and schedule. They differ only in the switches of ``RECIPES``.
A run lives in ``root/NAME-sSEED``; a finished one is reused, an interrupted one resumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from nmt.core.config import Config, apply_overrides, load_config
from nmt.core.errors import NmtError

# name -> the switches that make it (over BASE); what each experiment trains is named here.
RECIPES = {
    "rnn-no-attention": ["model.arch=rnn", "model.rnn_bidirectional=true", "model.rnn_attention=false"],
    "rnn-one-way": ["model.arch=rnn", "model.rnn_bidirectional=false", "model.rnn_attention=true"],
    "rnn-bidirectional": ["model.arch=rnn", "model.rnn_bidirectional=true", "model.rnn_attention=true"],
    "transformer-h1": ["model.n_heads=1"],
    "transformer-h2": ["model.n_heads=2"],
    "transformer-h4": ["model.n_heads=4"],
    "transformer-h8": ["model.n_heads=8"],
    "transformer-h1-unscaled": ["model.n_heads=1", "model.attention_scale=none"],
    "transformer-h4-unscaled": ["model.n_heads=4", "model.attention_scale=none"],
}

# The shared recipe: the shipped Transformer's shape and optimizer (configs/transformer-de-en.toml)
# and the RNN's (configs/rnn-de-en.toml) where the RNN differs; a short linear schedule.
BASE = [
    "data.corpus={data}", "data.src_lang=de", "data.tgt_lang=en", "data.vocab_size=8000",
    "model.d_model=256", "model.n_encoder_layers=3", "model.n_decoder_layers=3",
    "model.d_ff=1024", "model.dropout=0.1", "model.embed_dim=256", "model.hidden_size=512",
    "train.max_tokens=4000", "train.lr=2e-3", "train.lr_schedule=linear",
    "train.warmup_steps={warmup}", "train.max_steps={steps}", "train.max_epochs=1000",
    "train.label_smoothing=0.1", "train.clip_norm=1.0", "train.precision=bf16",
    "train.patience=0", "train.average_last=1", "train.eval_max_sentences=200",
    "train.save_every_steps=100", "train.log_every_steps=50", "train.seed={seed}",
    "decode.clause_split_tokens=0",
]


@dataclass(frozen=True)
class Budget:
    """What every model of the study gets: ``steps`` updates of 4,000 tokens, ``seeds``."""

    steps: int = 500
    seeds: tuple[int, ...] = (1, 2)
    data: str = "data/multi30k"
    overrides: tuple[str, ...] = ()  # applied to every model last (tests shrink them)
    probe_inputs: int = 100  # inputs per length and position of the pass-through probe
    mask_sentences: int = 300  # test sentences translated once per masked head
    divergence_sentences: int = 200  # test pairs whose attention the heads are compared on

    @property
    def warmup(self) -> int:
        return max(1, self.steps // 4)

    def describe(self) -> str:
        return (f"{self.steps} updates of 4,000 tokens (linear warmup over {self.warmup}, then "
                f"linear decay), seeds {', '.join(map(str, self.seeds))}")


def recipe(name: str, seed: int, budget: Budget) -> Config:
    if name not in RECIPES:
        raise NmtError(f"unknown study model {name!r}; known: {', '.join(RECIPES)}")
    values = dict(data=budget.data, steps=budget.steps, warmup=budget.warmup, seed=seed)
    overrides = [o.format(**values) for o in BASE] + RECIPES[name] + list(budget.overrides)
    if "model.arch=rnn" in RECIPES[name]:
        overrides.append("model.dropout=0.2")  # the RNN's tuned value (configs/rnn-de-en.toml)
        overrides += [o for o in budget.overrides if o.startswith("model.dropout")]
    config = apply_overrides(load_config(None, []), overrides, where=f"study model {name}")
    return dataclasses.replace(config, name=f"study-{name}")


def run_dir(root: Path, name: str, seed: int) -> Path:
    return root / f"{name}-s{seed}"


def trained(name: str, seed: int, budget: Budget, root: Path, log=print) -> Path:
    """The run folder of ``name`` trained with ``seed``: trained, resumed or found finished.
    A run whose loss became infinite or NaN is recorded (``diverged.txt``), not retried."""
    from nmt.train.loop import NonFiniteLoss, train

    folder = run_dir(root, name, seed)
    if (folder / "diverged.txt").is_file() or finished(folder):
        return folder
    log(f"training {folder.name}: {budget.describe()}")
    try:
        train(recipe(name, seed, budget), folder, resume=(folder / "states.json").is_file(),
              command=f"nmt study (model {name}, seed {seed})")
    except NonFiniteLoss as error:
        (folder / "diverged.txt").write_text(f"{error}\n", encoding="utf-8")
        log(f"{folder.name} diverged: {error}")
        return folder
    (folder / FINISHED).write_text(f"{budget.describe()}\n", encoding="utf-8")  # train() returned
    return folder


FINISHED = "study-finished.txt"  # written once train() has returned (an interrupt raises)


def finished(folder: Path) -> bool:
    return (folder / FINISHED).is_file()


def diverged(folder: Path) -> bool:
    return (folder / "diverged.txt").is_file()
