"""Files and folders written atomically: a reader (or a crash) sees the old one or the new one,
never half; and their SHA-256 sums.

A file is written to a temporary file beside it and renamed over it; a folder (a model
directory, a report) is assembled in a staging folder beside it (``staging_dir``) and swapped
into place (``replace_dir``). A write that fails removes what it wrote and says so in one line
(``NmtError``: a full disk, a read-only folder); a write that is killed leaves a dot-named
temporary behind, which no reader takes for the real thing and the next write of the same
target removes.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from nmt.core.errors import NmtError


def write_error(path: Path, error: OSError) -> NmtError:
    """One line for a failed write: the file and the system's reason."""
    return NmtError(f"{path}: cannot write: {error.strerror or error}")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then renamed over it. On any
    failure the temporary file is removed; an OSError becomes one line naming ``path``."""
    path = Path(path)
    tmp = None
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False) as handle:
            tmp = handle.name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(path, error) from None
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_leftovers(target: Path) -> None:
    """The staging and old folders of earlier writes of ``target`` whose process is gone (a
    write that was killed): ``.NAME.tmp-PID-*`` and ``.NAME.old-PID``."""
    target = Path(target)
    for leftover in target.parent.glob(f".{target.name}.*"):
        kind, _, rest = leftover.name[len(target.name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid)) and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_dir(target: Path) -> Path:
    """A private folder beside ``target`` to assemble its new version in (dot-named, so never
    read as a model or a report); the leftovers of killed writes of ``target`` are removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    try:
        return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-{os.getpid()}-"))
    except OSError as error:
        raise write_error(target, error) from None


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A staging folder for ``target`` (``staging_dir``), put in its place when the block ends
    without an error, removed whatever happens; an OSError is one line naming ``target``."""
    target = Path(target)
    staging = staging_dir(target)
    try:
        yield staging
        replace_dir(staging, target)
    except OSError as error:
        raise write_error(target, error) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_dir(staging: Path, target: Path) -> None:
    """Put a finished staging folder in place of ``target``. Where the system can swap two
    names in one step (Linux's renameat2), ``target`` names the old folder or the new one at
    every instant; elsewhere it is missing for the moment between two renames."""
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a model directory is for everyone
    if not target.exists():
        os.replace(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # it now holds the old version
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 with RENAME_EXCHANGE); False where unsupported."""
    rename = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if rename is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if rename(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
