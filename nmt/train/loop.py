"""The training loop: one function, flat, the same on one process or many (torchrun).

Label-smoothed cross-entropy, Adam with linear warmup and inverse-square-root or linear decay, gradient
clipping, token-budget batches, bf16 autocast with fp32 master weights, an evaluation every epoch
(val loss, val BLEU with greedy search), the best model kept by val BLEU, early stopping, the last
N epochs averaged. Everything needed to continue exactly where it stopped is saved every
``save_every_steps`` steps and at every epoch end (see nmt/train/checkpoint.py).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from nmt.core.config import Config
from nmt.core.errors import NmtError
from nmt.core.files import atomic_write_text
from nmt.core.progress import bar
from nmt.data.batching import BatchPlan, StorePlan
from nmt.data.prepare import (
    check_sources,
    copy_vocabulary,
    eval_data,
    prepare_store,
    validation_split,
)
from nmt.data.store import TokenStore
from nmt.data.tokenizer import PAD_ID, Tokenizer
from nmt.decode.search import greedy_search
from nmt.decode.target_vocabulary import store_vocabularies, write_target_vocabularies
from nmt.evaluate.scoring import bleu
from nmt.models import build_model
from nmt.models.directory import TARGET_VOCABULARIES, cpu_weights, save_model_dir
from nmt.train.checkpoint import load_training_state, save_training_state
from nmt.train.distill import distilled_targets


def log(*args, **kwargs):
    if rank() == 0:
        print(*args, file=sys.stderr, flush=True, **kwargs)


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def inverse_sqrt_schedule(step: int, warmup: int) -> float:
    """lr factor: linear warmup to 1 over ``warmup`` steps, then sqrt(warmup / step)."""
    step = max(step, 1)
    return min(step / warmup, math.sqrt(warmup / step)) if warmup > 0 else 1.0 / math.sqrt(step)


def linear_schedule(step: int, warmup: int, max_steps: int) -> float:
    """lr factor: linear warmup to 1 over ``warmup`` steps, then linear decay to 0 at ``max_steps``.

    With a known number of updates, ending at lr 0 anneals the weights into a minimum instead of
    leaving them wherever a still-large step put them ("Budgeted Training", Li et al., 2020).
    """
    step = max(step, 1)
    if step < warmup:
        return step / warmup
    return max(0.0, (max_steps - step) / max(max_steps - warmup, 1))


def lr_factor(t, step: int) -> float:
    """The configured schedule's factor (``t``: a TrainConfig)."""
    if t.lr_schedule == "linear":
        return linear_schedule(step, t.warmup_steps, t.max_steps)
    return inverse_sqrt_schedule(step, t.warmup_steps)


def label_smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Summed cross-entropy against (1 - eps) one-hot + eps uniform (Szegedy et al., 2016).

    ``logits`` (N, V) are those of the real target tokens ``target[target != PAD_ID]``: the
    model projects only those (``logits_mask``), since the vocabulary softmax is the largest single
    cost of a step and padding rows would be thrown away anyway. The softmax runs in the logits'
    own precision (PyTorch accumulates bf16 reductions in fp32), several times faster than
    casting the logits to fp32 first.
    """
    return F.cross_entropy(logits, target[target != PAD_ID], label_smoothing=smoothing,
                           reduction="sum").float()


def autocast(precision: str, device: torch.device | str = "cpu"):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                          enabled=precision == "bf16")


def training_device(name: str) -> torch.device:
    """``auto`` takes a CUDA GPU when there is one: the same run, many times faster."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise NmtError("train.device is 'cuda' but PyTorch sees no CUDA GPU "
                       "(use 'auto' or 'cpu')")
    if name == "cuda" and world_size() > 1:  # one GPU per process under torchrun
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


@dataclass
class Progress:
    """Where the run stands; saved with every training state."""

    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch already trained on
    step: int = 0
    elapsed: float = 0.0  # training seconds, summed over sessions
    best_bleu: float = -1.0
    best_epoch: int = -1
    epochs_without_gain: int = 0
    epoch_checkpoints: list = field(default_factory=list)  # files of the last N epochs' weights
    finished: bool = False


def rng_states() -> dict:
    states = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():  # dropout on a GPU draws from its own generator
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


@torch.inference_mode()
def evaluate(model, valid, precision: str, max_tokens: int, max_sentences: int = 0,
             max_len_ratio: float = 1.5, max_len_offset: int = 10, tokenizer=None) -> dict:
    """Validation loss per target token (teacher forced) and BLEU of greedy translations."""
    model.eval()
    device = next(model.parameters()).device
    count = len(valid.src_ids) if max_sentences <= 0 else min(max_sentences, len(valid.src_ids))
    plan = BatchPlan(valid.src_ids[:count], valid.tgt_ids[:count], max_tokens, shuffle=False)
    loss_sum, tokens = 0.0, 0
    hyps: list[list[int]] = [[] for _ in range(count)]
    with autocast(precision, device):
        for indices in plan.epoch(0):
            batch = plan.batch(indices).to(device)
            logits = model(batch.src, batch.src_mask, batch.tgt_in)
            loss_sum += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(),
                                              batch.tgt_out.reshape(-1), ignore_index=PAD_ID,
                                              reduction="sum"))
            tokens += batch.n_tgt_tokens
            for i, h in zip(indices, greedy_search(model, batch.src, batch.src_mask,
                                                   max_len_ratio, max_len_offset)):
                hyps[i] = h[0].tokens
    texts = tokenizer.decode(hyps)
    metrics = {"val_loss": loss_sum / max(tokens, 1), "val_examples": texts[:3]}
    if valid.pairs is None:
        score, _ = bleu(texts, valid.tgt_text[:count])
        return {**metrics, "val_bleu": round(score.score, 2)}
    by_pair = {}
    for pair in dict.fromkeys(valid.pairs[:count]):
        rows = [i for i in range(count) if valid.pairs[i] == pair]
        score, _ = bleu([texts[i] for i in rows], [valid.tgt_text[i] for i in rows])
        by_pair[pair] = round(score.score, 2)
    # One model for every direction: chosen by the mean of their BLEU scores.
    return {**metrics, "val_bleu": round(sum(by_pair.values()) / len(by_pair), 2),
            "val_bleu_by_pair": by_pair}


def average_weights(files: list[Path]) -> dict[str, torch.Tensor]:
    total = None
    for path in files:
        weights = load_file(str(path))
        if total is None:
            total = {k: v.double() for k, v in weights.items()}
        else:
            for k, v in weights.items():
                total[k] += v.double()
    return {k: (v / len(files)).float() for k, v in total.items()}


def plot_curves(metrics_path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    fig, (ax_loss, ax_bleu) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot([r["elapsed"] / 60 for r in train], [r["loss"] for r in train], label="train")
    ax_loss.plot([r["elapsed"] / 60 for r in evals], [r["val_loss"] for r in evals], "o-",
                 label="val")
    ax_loss.set(xlabel="minutes", ylabel="loss per target token", title="loss")
    ax_loss.legend()
    ax_bleu.plot([r["elapsed"] / 60 for r in evals], [r["val_bleu"] for r in evals], "o-")
    ax_bleu.set(xlabel="minutes", ylabel="BLEU", title="val BLEU (greedy)")
    fig.tight_layout()
    tmp = out.with_name("." + out.name)
    fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    os.replace(tmp, out)


def hardware(device: torch.device = torch.device("cpu")) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


class Interrupted(Exception):
    pass


class StopRequest:
    """Ctrl-C / SIGTERM ask the loop to stop at the next step boundary, so that a state is never
    saved half-way through an optimizer update. A second Ctrl-C stops at once, saving nothing."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# ----------------------------------------------------------------------------- the run's pieces


@dataclass
class Run:
    """A training run's moving parts, made by ``set_up`` and handed to each piece of the loop."""

    config: Config
    dir: Path
    device: torch.device
    tokenizer: object
    store: TokenStore
    valid: object
    model: torch.nn.Module
    ddp_model: torch.nn.Module  # the model itself, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: object
    plan: StorePlan
    progress: Progress = field(default_factory=Progress)

    @property
    def distributed(self) -> bool:
        return self.ddp_model is not self.model


class NonFiniteLoss(NmtError):
    pass


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse a run folder that does not fit the request, before anything is written there: a
    new run gets a folder of its own, so it never deletes or reuses what it did not write."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NmtError(f"{run_dir}: is a file, not a run folder")
    if resume:
        for name in ("config.json", "states.json"):
            if not (run_dir / name).is_file():
                raise NmtError(f"{run_dir / name}: missing, so there is no run to resume here "
                               "(start one with --config, or give the folder of a run)")
    elif (run_dir / "states.json").exists():
        raise NmtError(f"{run_dir}: already holds a training run; use --resume {run_dir} "
                       "to continue it, or another --run-dir")
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        names = sorted(p.name for p in run_dir.iterdir())
        raise NmtError(f"{run_dir}: not empty ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}); "
                       "a new run needs a folder of its own: another --run-dir, or empty this one")


DATA_RECORD = "data.json"  # the run's token store, and where its val and test pairs are


def load_data(config: Config, run_dir: Path, resume: bool, distributed: bool):
    """The token store (rank 0 prepares it; the others wait, then read it), the vocabulary and
    the validation split. A resumed run reads the store it started with."""
    record = run_dir / DATA_RECORD
    if resume and record.is_file():
        store_dir = Path(json.loads(record.read_text(encoding="utf-8"))["store"])
    elif rank() == 0:
        store_dir = prepare_store(config, log=log, distill=distilled_targets)
        folder, test_split = eval_data(config, store_dir)
        atomic_write_text(record, json.dumps({"store": str(store_dir), "eval_data": str(folder),
                                              "test_split": test_split}, indent=1) + "\n")
    if distributed:
        import torch.distributed as dist

        dist.barrier()
        store_dir = Path(json.loads(record.read_text(encoding="utf-8"))["store"])
    store = TokenStore(store_dir)
    if rank() == 0:
        copy_vocabulary(store_dir, run_dir)
    if distributed:
        dist.barrier()
    tokenizer = Tokenizer(run_dir / "spm.model")
    log(f"train: {len(store):,} pairs in {store_dir}")
    return tokenizer, store, validation_split(config, store_dir, tokenizer)


def set_up(config: Config, run_dir: Path, resume: bool) -> Run:
    """Devices and threads, data, model, optimizer and schedule: a run at step 0."""
    t = config.train
    check_sources(config.data)
    distributed = world_size() > 1
    device = training_device(t.device)
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.set_num_threads(t.threads or max(1, (os.cpu_count() or 1) // world_size()))
    if rank() == 0:
        check_run_dir(run_dir, resume)
        run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer, store, valid = load_data(config, run_dir, resume, distributed)
    if not len(store):
        raise NmtError(f"no training pairs left after cleaning and dropping those over "
                       f"data.max_tokens_per_sentence ({config.data.max_tokens_per_sentence})")
    if rank() == 0 and not (run_dir / TARGET_VOCABULARIES).is_file():  # copied into model dirs
        write_target_vocabularies(run_dir, store_vocabularies(store, tokenizer))
    random.seed(t.seed)
    torch.manual_seed(t.seed)
    if device.index is not None:  # this process's GPU under torchrun
        torch.cuda.set_device(device)
    model = build_model(config.model, tokenizer.vocab_size).to(device)
    # fused: one kernel for all parameters instead of a loop over them (a few times faster).
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, betas=(t.adam_beta1, t.adam_beta2),
                                 eps=t.adam_eps, weight_decay=t.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(t, step))
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    plan = StorePlan(store, t.max_tokens, seed=t.seed)
    return Run(config, run_dir, device, tokenizer, store, valid, model, ddp_model,
               optimizer, scheduler, plan)


def restore(run: Run) -> None:
    """Continue from the newest intact state; overrides of the budget extend a finished run."""
    state = load_training_state(run.dir, log=log)
    if state is None:
        raise NmtError(f"{run.dir / 'states.json'}: lists no training state to resume from")
    if state["vocab_size"] != run.tokenizer.vocab_size:
        raise NmtError(f"{run.dir}: checkpoint vocabulary ({state['vocab_size']}) does not "
                       f"match {run.dir / 'spm.model'} ({run.tokenizer.vocab_size})")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.progress = Progress(**state["progress"])
    set_rng_states(state["rng"])
    trim_metrics(run.dir, run.progress.step)
    if run.progress.finished and budget_left(run):
        run.progress.finished = False
        log(f"{run.dir}: extending a finished run (the budget allows more)")
    log(f"resuming at epoch {run.progress.epoch + 1}, batch {run.progress.batch_in_epoch}, "
        f"step {run.progress.step}")


def trim_metrics(run_dir: Path, step: int) -> None:
    """Drop the rows logged after the state a run resumes from: they will be logged again."""
    path = run_dir / "metrics.jsonl"
    if rank() != 0 or not path.is_file():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(rows):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def budget_left(run: Run) -> bool:
    t, p = run.config.train, run.progress
    return (p.epoch < t.max_epochs and not (t.max_steps and p.step >= t.max_steps)
            and not (t.max_minutes and p.elapsed >= t.max_minutes * 60))


def budget_spent(run: Run) -> str | None:
    """Why the run must stop after this step, if it must: the time or the step budget."""
    t, p = run.config.train, run.progress
    if t.max_minutes and p.elapsed >= t.max_minutes * 60:
        return f"wall-time budget of {t.max_minutes} minutes reached"
    if t.max_steps and p.step >= t.max_steps:
        return f"{t.max_steps} updates done"
    return None


def save_state(run: Run) -> None:
    if rank() != 0:
        return
    save_training_state(run.dir, {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "rng": rng_states(),
        "progress": run.progress.__dict__, "vocab_size": run.tokenizer.vocab_size,
    }, run.progress.step)


def write_metrics(run: Run, row: dict) -> None:
    if rank() == 0:
        with open(run.dir / "metrics.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


# ----------------------------------------------------------------------------- one step


def train_step(run: Run, indices: list[int]) -> tuple[float, int, int]:
    """One update on one batch: the summed loss of this process's rows, their source + target
    tokens and their target tokens."""
    t = run.config.train
    batch, total_tgt = run.plan.batch(indices, rank(), world_size())
    batch = batch.to(run.device)
    with autocast(t.precision, run.device):
        logits = run.ddp_model(batch.src, batch.src_mask, batch.tgt_in,
                               logits_mask=batch.tgt_out != PAD_ID)
    loss_sum = label_smoothed_loss(logits, batch.tgt_out, t.label_smoothing)
    loss_value = float(loss_sum.detach())
    if not math.isfinite(loss_value):
        raise NonFiniteLoss(
            f"the loss became {loss_value} at step {run.progress.step + 1} (lr "
            f"{run.scheduler.get_last_lr()[0]:.2e}): training stopped before that update, and "
            f"{run.dir} keeps its last good state; try a lower train.lr")
    # Normalised by the whole batch's tokens; DDP averages over processes, so scale back up:
    # the gradient equals that of the whole batch on one process.
    loss = loss_sum / total_tgt * world_size()
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if t.clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), t.clip_norm)
    run.optimizer.step()
    run.scheduler.step()
    return loss_value, batch.n_src_tokens + batch.n_tgt_tokens, batch.n_tgt_tokens


@dataclass
class Window:
    """Training figures since the last log line."""

    start: float = field(default_factory=time.perf_counter)
    tokens: int = 0
    loss: float = 0.0
    tgt_tokens: int = 0

    def row(self, run: Run) -> dict:
        return {"kind": "train", "step": run.progress.step, "epoch": run.progress.epoch + 1,
                "loss": round(self.loss / max(self.tgt_tokens, 1), 4),
                "lr": run.scheduler.get_last_lr()[0],
                "tokens_per_s": round(self.tokens * world_size()
                                      / (time.perf_counter() - self.start)),
                "elapsed": round(run.progress.elapsed, 1)}


def stop_requested(run: Run, stop) -> bool:
    requested = stop is not None and stop.requested
    if run.distributed:  # every process stops after the same step
        import torch.distributed as dist

        flag = torch.tensor([int(requested)], device=run.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        requested = bool(flag.item())
    return requested


def run_bar(run: Run):
    """One bar for the whole run, to its budget: ``max_steps`` updates, else ``max_minutes``
    of training, else ``max_epochs`` epochs (an estimate until every shard is planned)."""
    t, p = run.config.train, run.progress
    off = rank() != 0
    if t.max_steps:
        return bar(t.max_steps, "training", unit="step", initial=p.step, disable=off)
    if t.max_minutes:
        return bar(round(t.max_minutes * 60), "training", unit="s", initial=round(p.elapsed),
                   disable=off)
    total = t.max_epochs * run.plan.batches_per_epoch()
    done = p.epoch * run.plan.batches_per_epoch() + p.batch_in_epoch
    return bar(total, "training", unit="step", initial=done, disable=off)


def run_epoch(run: Run, stop, progress) -> str | None:
    """The rest of the current epoch, step by step; why the budget ended it, if it did."""
    t, p = run.config.train, run.progress
    by_time = not t.max_steps and bool(t.max_minutes)  # run_bar counts seconds then
    run.model.train()
    window = Window()
    for indices in run.plan.epoch(p.epoch, start=p.batch_in_epoch):
        step_start = time.perf_counter()
        loss, tokens, tgt_tokens = train_step(run, indices)
        p.step += 1
        p.batch_in_epoch += 1
        seconds = time.perf_counter() - step_start
        p.elapsed += seconds
        window.tokens, window.loss = window.tokens + tokens, window.loss + loss
        window.tgt_tokens += tgt_tokens
        progress.update(seconds if by_time else 1)
        if p.step % t.log_every_steps == 0:
            row = window.row(run)
            progress.set_postfix(epoch=p.epoch + 1, loss=row["loss"], lr=f"{row['lr']:.2e}",
                                 tok_s=row["tokens_per_s"])
            write_metrics(run, row)
            window = Window()
        if t.save_every_steps and p.step % t.save_every_steps == 0:
            save_state(run)
        if stop_requested(run, stop):
            raise Interrupted()
        reason = budget_spent(run)
        if reason:  # either budget ends the run the same way: evaluate, then stop
            log(reason)
            return reason
    return None


# ----------------------------------------------------------------------------- epoch ends


def evaluate_model(run: Run, model) -> dict:
    c = run.config
    return evaluate(model, run.valid, c.train.precision, c.decode.max_tokens,
                    c.train.eval_max_sentences, c.decode.max_len_ratio, c.decode.max_len_offset,
                    run.tokenizer)


def model_info(run: Run, model, metrics: dict, **extra) -> dict:
    """What a model directory's metrics.json says of its training."""
    by_pair = {"val_bleu_by_pair": metrics["val_bleu_by_pair"]} \
        if "val_bleu_by_pair" in metrics else {}
    return {**extra, "val_bleu": metrics["val_bleu"], **by_pair,
            "val_loss": round(metrics["val_loss"], 4),
            "training_minutes": round(run.progress.elapsed / 60, 1),
            "parameters": model.num_parameters(), "hardware": hardware(run.device),
            "world_size": world_size()}


def end_of_epoch(run: Run, budget_reason: str | None) -> None:
    """Evaluate; save last/, best/ (by val BLEU) and the epoch's weights; plot the curves."""
    p = run.progress
    epoch_done = p.epoch + 1
    if budget_reason is None:  # a budget stop is mid-epoch: resume would continue it
        p.epoch, p.batch_in_epoch = p.epoch + 1, 0
    if rank() != 0:
        return
    eval_start = time.perf_counter()
    metrics = evaluate_model(run, run.model)
    write_metrics(run, {"kind": "eval", "epoch": epoch_done, "step": p.step,
                        "val_loss": round(metrics["val_loss"], 4), "val_bleu": metrics["val_bleu"],
                        **({"val_bleu_by_pair": metrics["val_bleu_by_pair"]}
                           if "val_bleu_by_pair" in metrics else {}),
                        "elapsed": round(p.elapsed, 1),
                        "eval_seconds": round(time.perf_counter() - eval_start, 1)})
    log(f"epoch {epoch_done}: step {p.step}, val loss {metrics['val_loss']:.3f}, "
        f"val BLEU {metrics['val_bleu']:.2f}"
        + "".join(f" {k} {v:.2f}" for k, v in metrics.get("val_bleu_by_pair", {}).items())
        + f", {p.elapsed / 60:.1f} min "
        f"| {metrics['val_examples'][0]}")
    info = {"training": model_info(run, run.model, metrics, epoch=epoch_done, step=p.step)}
    spm_path = run.dir / "spm.model"
    save_model_dir(run.dir / "last", run.model, run.config, spm_path, info)
    if metrics["val_bleu"] > p.best_bleu:
        p.best_bleu, p.best_epoch, p.epochs_without_gain = metrics["val_bleu"], epoch_done, 0
        save_model_dir(run.dir / "best", run.model, run.config, spm_path, info)
    else:
        p.epochs_without_gain += 1
    keep_epoch_weights(run, epoch_done)
    plot_curves(run.dir / "metrics.jsonl", run.dir / "curves.png")


def keep_epoch_weights(run: Run, epoch: int) -> None:
    """The last ``average_last`` epochs' weights, for averaging at the end."""
    keep = run.config.train.average_last
    if keep <= 1:
        return
    (run.dir / "epochs").mkdir(exist_ok=True)
    path = run.dir / "epochs" / f"epoch-{epoch:03d}.safetensors"
    save_file(cpu_weights(run.model), str(path))
    names = [n for n in run.progress.epoch_checkpoints if n != path.name] + [path.name]
    for stale in names[:-keep]:
        (run.dir / "epochs" / stale).unlink(missing_ok=True)
    run.progress.epoch_checkpoints = names[-keep:]


def share_early_stopping(run: Run) -> None:
    """Rank 0 evaluated; every process must agree on whether to stop."""
    if run.distributed:
        import torch.distributed as dist

        shared = [run.progress.epochs_without_gain]
        dist.broadcast_object_list(shared, src=0)
        run.progress.epochs_without_gain = shared[0]


# ----------------------------------------------------------------------------- the end


def check_identical_parameters(run: Run) -> None:
    """Every data-parallel process must end with the very same parameters."""
    import torch.distributed as dist

    flat = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world_size())]
    dist.all_gather(gathered, flat)
    if not all(torch.equal(gathered[0], g) for g in gathered[1:]):
        raise NmtError("data-parallel processes ended with different parameters")
    log(f"parameters identical on all {world_size()} processes")


def average_epochs(run: Run) -> None:
    """averaged/: the mean of the last epochs' weights, evaluated like the others."""
    p = run.progress
    if rank() != 0 or len(p.epoch_checkpoints) <= 1:
        return
    files = [run.dir / "epochs" / name for name in p.epoch_checkpoints]
    averaged = build_model(run.config.model, run.tokenizer.vocab_size)
    averaged.load_state_dict(average_weights(files))
    averaged.to(run.device)
    metrics = evaluate_model(run, averaged)
    info = model_info(run, averaged, metrics, averaged_epochs=p.epoch_checkpoints)
    save_model_dir(run.dir / "averaged", averaged, run.config, run.dir / "spm.model",
                   {"training": info})
    write_metrics(run, {"kind": "averaged", "step": p.step, **info})
    log(f"averaged the last {len(files)} epochs: val BLEU {metrics['val_bleu']:.2f} "
        f"(best single epoch {p.best_bleu:.2f}, epoch {p.best_epoch})")


def record_start(run: Run, resume: bool, command: str) -> None:
    """config.json and the command, written only once every check has passed."""
    if rank() != 0:
        return
    atomic_write_text(run.dir / "config.json", run.config.to_json())
    if command:
        path = run.dir / "command.txt"
        earlier = path.read_text(encoding="utf-8") if resume and path.is_file() else ""
        atomic_write_text(path, earlier + command + "\n")
    m, plan, t = run.model, run.plan, run.config.train
    log(f"model: {run.config.model.arch}, {m.num_parameters():,} parameters; "
        f"{plan.batches_per_epoch():,} batches per epoch, {plan.padding_fraction():.1%} padding; "
        f"precision {t.precision}; "
        + (f"{torch.get_num_threads()} threads" if run.device.type == "cpu" else str(run.device))
        + f" x {world_size()} processes")


def train(config: Config, run_dir: str | Path, resume: bool = False, command: str = "") -> Path:
    """Train a model as ``config`` says, in ``run_dir``; returns the run directory.

    ``command``, the command line that asked for it, is kept in ``command.txt`` for the model
    card. With ``resume`` the run continues from its last state, exactly as if never stopped.
    """
    run = set_up(config, Path(run_dir), resume)
    if resume:
        restore(run)
    if run.progress.finished:
        log(f"{run.dir}: this run has already finished (raise train.max_steps, max_minutes or "
            "max_epochs with --set to extend it)")
        return run.dir
    record_start(run, resume, command)
    stop = StopRequest().__enter__() if threading.current_thread() is threading.main_thread() \
        else None
    progress = run_bar(run)
    try:
        while budget_left(run):
            reason = run_epoch(run, stop, progress)
            end_of_epoch(run, reason)
            share_early_stopping(run)
            save_state(run)
            t = run.config.train
            if reason:
                break
            if t.patience and run.progress.epochs_without_gain >= t.patience:
                log(f"no better val BLEU for {t.patience} epochs: stopping early")
                break
        if run.distributed:
            check_identical_parameters(run)
        average_epochs(run)
        run.progress.finished = True
        save_state(run)
        if run.distributed:
            # Rank 0 averages and writes while the others wait here: a process that tore its
            # process group down and exited meanwhile died in gloo's teardown (SIGABRT) now
            # and then on a busy machine.
            import torch.distributed as dist

            dist.barrier()
    except Interrupted:
        save_state(run)
        log(f"\ninterrupted: state saved at step {run.progress.step}; continue with "
            f"`nmt train --resume {run.dir}`")
        raise SystemExit(130) from None
    finally:
        progress.close()
        if stop is not None:
            stop.__exit__()
        if run.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    log(f"done: {run.dir} ({run.progress.elapsed / 60:.1f} min of training)")
    if run.distributed or os.environ.get("NMT_REPORT_READS"):  # each process its own line
        print(f"rank {rank()}: read {run.store.bytes_read:,} bytes of token ids from "
              f"{run.store.shards_opened} of {len(run.store.shards)} shards", file=sys.stderr,
              flush=True)
    return run.dir
