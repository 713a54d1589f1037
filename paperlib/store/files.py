"""Writing files safely: atomic replacement, no write through a planted symbolic link, and the SHA-256 of a file.
Nothing here knows about diffusion models."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".paperlib.tmp"  # every temporary file paperlib writes ends so; no other file is ever cleaned up


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder (fsync'd) and an atomic rename, so that a
    reader never sees a half-written file; the temporary file is removed if the write fails. The temporary file is
    created exclusively (never through a planted link), and the rename replaces a link at ``path``, never its target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions of a normal write
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def open_no_follow(path: str | os.PathLike, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (O_NOFOLLOW) with an OSError naming it: paperlib writes
    into files it opens this way (locks, logs) and must not write through a link that someone else planted."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "is a symbolic link, which paperlib does not write through; remove it",
                          str(path)) from None
        raise




def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (names caches after, and identifies, the exact file they were made from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
