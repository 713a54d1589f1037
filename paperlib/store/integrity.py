"""Digests over everything a run reads back, and size checks made before a file is inflated or allocated.

:func:`content_digest` covers a nested structure of dicts, lists, tuples, tensors and plain values: every tensor's
dtype, shape and bytes, every number, string and key. It is a Merkle digest, so a subtree that a file shares at two
places (a pickle can) is hashed once: the work is linear in the number of distinct objects, never in the number of
paths through them. A structure that refers to itself, or is nested deeper than :data:`MAX_DEPTH`, is refused.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import torch

MAX_DEPTH = 64  # far beyond any state paperlib writes (about 6 levels), far below Python's recursion limit


class IntegrityError(ValueError):
    """A structure cannot be digested (it refers to itself or nests too deep), or a file's content does not match
    the digest or the sizes it claims."""


def content_digest(obj: Any) -> str:
    """Hex SHA-256 over ``obj``: dicts (keys sorted by their text), lists, tuples, tensors (dtype, shape and bytes)
    and plain values (type and repr). Equal content gives the equal digest whether or not subtrees are shared."""
    memo: dict[int, bytes] = {}
    active: set[int] = set()

    def node(x: Any, depth: int) -> bytes:
        if depth > MAX_DEPTH:
            raise IntegrityError(f"nested deeper than {MAX_DEPTH} levels")
        key = id(x)
        if key in memo:
            return memo[key]
        if key in active:
            raise IntegrityError("the structure refers to itself")
        h = hashlib.sha256()
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"tensor {t.dtype} {tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(x, (dict, list, tuple)):
            active.add(key)
            if isinstance(x, dict):
                h.update(b"dict|")
                for k in sorted(x, key=str):
                    h.update(node(k, depth + 1))
                    h.update(node(x[k], depth + 1))
            else:
                h.update(f"{type(x).__name__} {len(x)}|".encode())
                for item in x:
                    h.update(node(item, depth + 1))
            active.discard(key)
        else:
            h.update(f"{type(x).__qualname__}|{x!r}".encode())
        memo[key] = h.digest()
        return memo[key]

    return node(obj, 0).hex()


def check_stored_zip(path: str | Path) -> None:
    """Refuse a zip (a ``torch.save`` file) whose members are compressed or claim more bytes than they store:
    torch inflates a member to its claimed size before anything is checked, so a small file could ask for any."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                    raise IntegrityError(f"{path}: member {info.filename!r} is compressed ({info.compress_size:,} bytes "
                                         f"stored, {info.file_size:,} claimed); torch files store their members as is")
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntegrityError(f"{path}: not a readable torch file: {exc}") from None
