"""Model directories: ``config.json``, ``model.safetensors``, ``spm.model`` and optionally the
target vocabularies, ``metrics.json`` and a ``README.md`` card, with ``SHA256SUMS`` over them.

A directory is assembled in a temporary folder and renamed into place, so a reader sees the old
directory or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from nmt.core.config import Config, ConfigError, config_from_dict
from nmt.core.errors import NmtError
from nmt.core.files import sha256, staged

MODEL_FILES = ("config.json", "model.safetensors", "spm.model")
CHECKSUMS = "SHA256SUMS"
TARGET_VOCABULARIES = "target_vocabulary.json"  # nmt/decode/target_vocabulary.py


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as fp32 CPU tensors, as safetensors files hold them (whatever the device)."""
    return {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}


def save_model_dir(path: str | Path, model: torch.nn.Module, config: Config, spm_path: str | Path,
                   metrics: dict | None = None, card: str | None = None) -> Path:
    """A model directory: weights, config, the SentencePiece model and, when it lies beside
    that, the target vocabularies (nmt/decode/target_vocabulary.py); written whole or not at all."""
    path = Path(path)
    with staged(path) as staging:
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
    return path


def write_checksums(folder: Path) -> None:
    """``SHA256SUMS`` (``sha256sum -c`` reads it) over every file of a model directory."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS)
    (folder / CHECKSUMS).write_text("".join(f"{sha256(folder / n)}  {n}\n" for n in names))


def verify_checksums(folder: Path) -> None:
    """Every file the directory's ``SHA256SUMS`` lists, intact; one line naming a damaged one."""
    sums = folder / CHECKSUMS
    if not sums.is_file():  # without it a swapped file would load and translate garbage
        raise NmtError(f"{folder}: no {CHECKSUMS}, so its files cannot be checked (a model "
                       f"directory carries one; `sha256sum * > {CHECKSUMS}` in it makes one)")
    listed = set()
    for number, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not name or "/" in name or name.startswith("."):
            raise NmtError(f"{sums}:{number}: expected '<sha256>  <file name>'")
        listed.add(name)
        if not (folder / name).is_file():
            raise NmtError(f"{folder / name}: missing (listed in {CHECKSUMS})")
        if sha256(folder / name) != digest:
            raise NmtError(f"{folder / name}: checksum mismatch: the file is damaged "
                           f"(it differs from {CHECKSUMS}); copy the model directory again")
    unlisted = [name for name in MODEL_FILES if name not in listed]
    if unlisted:
        raise NmtError(f"{sums}: does not list {', '.join(unlisted)}, so it cannot be checked")


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


def load_model(path: str | Path, config: Config, vocab_size: int) -> torch.nn.Module:
    """The model of a model directory. The shapes its weights file declares are compared with
    what ``config`` builds before anything is allocated (built on PyTorch's meta device): a
    config that asks for another size, or a weights file of another model, is named in one line
    instead of allocating what it asks for."""
    from nmt.models import build_model

    weights_path = Path(path) / "model.safetensors"
    with torch.device("meta"):
        expected = {name: tuple(t.shape)
                    for name, t in build_model(config.model, vocab_size).state_dict().items()}
    declared = declared_shapes(weights_path)
    if declared != expected:
        wrong = sorted(set(declared) ^ set(expected)) or \
            [name for name in expected if declared[name] != expected[name]]
        name = wrong[0]
        raise NmtError(f"{weights_path}: weights do not match the config: {name} is "
                       f"{declared.get(name, 'missing')} in the file, {expected.get(name, 'absent')} "
                       f"by the config ({len(wrong)} such)")
    model = build_model(config.model, vocab_size)
    load_weights(model, weights_path)
    return model


def declared_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape as a safetensors file's header declares it; nothing is read."""
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise NmtError(f"{weights_path}: corrupted or truncated weights file ({error})") from None


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
