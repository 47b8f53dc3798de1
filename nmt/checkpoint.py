"""Model directories and resumable training states, always written atomically.

A model directory holds ``config.json``, ``model.safetensors``, ``spm.model`` and optionally
``metrics.json`` and a ``README.md`` card. It is assembled in a temporary folder and renamed into
place, so a reader sees the old directory or the new one, never half of one.

Training states (``state-{step}.pt``: optimizer, scheduler, RNG states, position in the data) sit
in a run directory beside ``states.json``, a manifest of SHA-256 sums; the newest two are kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nmt.config import Config, ConfigError, config_from_dict
from nmt.corpus import sha256
from nmt.errors import NmtError
from nmt.fileio import atomic_write_text

MODEL_FILES = ("config.json", "model.safetensors", "spm.model")
CHECKSUMS = "SHA256SUMS"
TARGET_VOCABULARIES = "target_vocabulary.json"  # nmt/target_vocabulary.py


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished directory into place; the old one is removed only after the swap."""
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a model directory is for everyone
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as fp32 CPU tensors, as safetensors files hold them (whatever the device)."""
    return {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}


def save_model_dir(path: str | Path, model: torch.nn.Module, config: Config, spm_path: str | Path,
                   metrics: dict | None = None, card: str | None = None) -> Path:
    """A model directory: weights, config, the SentencePiece model and, when it lies beside
    that, the target vocabularies (nmt/target_vocabulary.py); written whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        save_file(cpu_weights(model), str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "config.json").write_text(config.to_json(), encoding="utf-8")
        shutil.copyfile(spm_path, staging / "spm.model")
        vocabularies = Path(spm_path).parent / TARGET_VOCABULARIES
        if vocabularies.is_file():
            shutil.copyfile(vocabularies, staging / TARGET_VOCABULARIES)
        if metrics is not None:
            (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if card is not None:
            (staging / "README.md").write_text(card, encoding="utf-8")
        write_checksums(staging)
        replace_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def write_checksums(folder: Path) -> None:
    """``SHA256SUMS`` (``sha256sum -c`` reads it) over every file of a model directory."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS)
    (folder / CHECKSUMS).write_text("".join(f"{sha256(folder / n)}  {n}\n" for n in names))


def verify_checksums(folder: Path) -> None:
    """Every file the directory's ``SHA256SUMS`` lists, intact; one line naming a damaged one."""
    sums = folder / CHECKSUMS
    if not sums.is_file():
        return  # a directory from before checksums: nothing to compare with
    for number, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not name or "/" in name or name.startswith("."):
            raise NmtError(f"{sums}:{number}: expected '<sha256>  <file name>'")
        if not (folder / name).is_file():
            raise NmtError(f"{folder / name}: missing (listed in {CHECKSUMS})")
        if sha256(folder / name) != digest:
            raise NmtError(f"{folder / name}: checksum mismatch: the file is damaged "
                           f"(it differs from {CHECKSUMS}); copy the model directory again")


def read_model_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_dir():
        raise NmtError(f"{path}: model directory not found")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise NmtError(f"{path}: not a model directory (missing {', '.join(missing)})")
    verify_checksums(path)
    try:
        raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NmtError(f"{path / 'config.json'}: cannot parse: {error}") from None
    try:
        return config_from_dict(raw, str(path / "config.json"))
    except ConfigError as error:
        raise NmtError(str(error)) from None


def load_weights(model: torch.nn.Module, weights_path: str | Path) -> None:
    """Load safetensors weights into ``model``; any damage is reported naming the file."""
    weights_path = Path(weights_path)
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise NmtError(f"{weights_path}: corrupted or truncated weights file ({error})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise NmtError(f"{weights_path}: weights do not match the config "
                       f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise NmtError(f"{weights_path}: {name} has shape {tuple(tensor.shape)}, the config "
                           f"builds {tuple(expected[name].shape)}")
        if not torch.isfinite(tensor).all():
            raise NmtError(f"{weights_path}: {name} contains NaN or infinite values")
    model.load_state_dict(weights)


# ----------------------------------------------------------------------------- training states


_STATE_NAME = re.compile(r"state-\d{8}\.pt")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _read_manifest(run_dir: Path) -> list[dict]:
    """The manifest's entries, each checked: a state file's bare name (never a path, so nothing
    outside the run folder is ever read or deleted), its step and its SHA-256."""
    manifest = run_dir / "states.json"
    if not manifest.is_file():
        return []
    try:
        entries = json.loads(manifest.read_text())["states"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise NmtError(f"{manifest}: corrupted state manifest") from None
    if not isinstance(entries, list):
        raise NmtError(f"{manifest}: corrupted state manifest ('states' is not a list)")
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)
                and _STATE_NAME.fullmatch(entry["file"]) and isinstance(entry.get("step"), int)
                and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])):
            raise NmtError(f"{manifest}: invalid entry {json.dumps(entry)[:120]} (expected "
                           "file 'state-NNNNNNNN.pt', an integer step and a sha256)")
    return entries


def save_training_state(run_dir: str | Path, state: dict, step: int, keep: int = 2) -> Path:
    """Write ``state-{step}.pt`` atomically, record its checksum, keep only the newest ``keep``."""
    run_dir = Path(run_dir)
    path = run_dir / f"state-{step:08d}.pt"
    with tempfile.NamedTemporaryFile(dir=run_dir, prefix=f".{path.name}.", delete=False) as tmp:
        torch.save(state, tmp)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)
    entries = [e for e in _read_manifest(run_dir) if e["file"] != path.name]
    entries.append({"file": path.name, "step": step, "sha256": sha256(path)})
    entries.sort(key=lambda e: e["step"])
    stale, entries = entries[:-keep], entries[-keep:]
    atomic_write_text(run_dir / "states.json", json.dumps({"states": entries}, indent=2) + "\n")
    for entry in stale:
        (run_dir / entry["file"]).unlink(missing_ok=True)
    return path


def verify_state(run_dir: Path, entry: dict) -> str | None:
    """None when the state file is intact, else what is wrong with it."""
    path = run_dir / entry["file"]
    if not path.is_file():
        return f"{path}: missing"
    if sha256(path) != entry["sha256"]:
        return f"{path}: checksum mismatch (truncated or corrupted)"
    return None


def load_training_state(run_dir: str | Path, log=print) -> dict | None:
    """The newest intact training state of a run, falling back (and saying so) past damaged ones."""
    run_dir = Path(run_dir)
    entries = _read_manifest(run_dir)
    for entry in reversed(entries):
        problem = verify_state(run_dir, entry)
        if problem is not None:
            log(f"warning: {problem}; trying an older state")
            continue
        try:
            return torch.load(run_dir / entry["file"], map_location="cpu", weights_only=True)
        except Exception as error:  # unreadable despite its checksum: treat like damage
            log(f"warning: {run_dir / entry['file']}: cannot load ({error}); trying an older state")
    if entries:
        raise NmtError(f"{run_dir}: no intact training state to resume from")
    return None
