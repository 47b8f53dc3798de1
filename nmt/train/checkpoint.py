"""Resumable training states, always written atomically.

Training states (``state-{step}.pt``: optimizer, scheduler, RNG states, position in the data) sit
in a run directory beside ``states.json``, a manifest of SHA-256 sums; the newest two are kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from nmt.core.errors import NmtError
from nmt.core.files import atomic_write, atomic_write_text, sha256

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
    for leftover in run_dir.glob(".state*.tmp"):  # of a save that was killed (states too)
        leftover.unlink(missing_ok=True)
    atomic_write(path, lambda handle: torch.save(state, handle))
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
